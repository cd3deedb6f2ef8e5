#include "support/lab.h"

#include <cstdlib>
#include <fstream>

#include "core/text.h"
#include "lb/haproxy/haproxy_lb.h"
#include "support/test_util.h"

namespace sp::test {

Result<Lab> Lab::Load() {
  const char* path = std::getenv("SP_LAB_ENV");
  if (!path || !*path) {
    return Err(ErrorCode::kUnavailable,
               "SP_LAB_ENV is not set: run lab tests through ctest (fixture `lab`), or bring a lab up with "
               "`tests/lab/lab up --dir D --docker-hosts 3` and export SP_LAB_ENV=D/lab.env");
  }
  std::ifstream in(path);
  if (!in) return Err(ErrorCode::kUnavailable, std::string("lab is not up: cannot read ") + path);
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  Lab lab;
  lab.dir = env["LAB_DIR"];
  lab.prefix = env["LAB_PREFIX"];
  lab.net = env["LAB_NET"];
  lab.bastion = env["LAB_BASTION"];
  lab.bastion_alt_port = std::atoi(env["LAB_BASTION_ALT_PORT"].c_str());
  lab.bastion_private = env["LAB_BASTION_PRIVATE"];
  lab.lb = env["LAB_LB"];
  auto api = Split(env["LAB_LB_API"], ':');
  if (api.size() == 2) {
    lab.lb_api_address = api[0];
    lab.lb_api_port = std::atoi(api[1].c_str());
  }
  lab.registry = env["LAB_REGISTRY"];
  lab.registry_push = env["LAB_REGISTRY_PUSH"];
  lab.registry_user = env["LAB_REGISTRY_USER"];
  lab.registry_password_file = env["LAB_REGISTRY_PASSWORD_FILE"];
  lab.registry_certs_d = env["LAB_REGISTRY_CERTS_D"];
  lab.registry_auth = env["LAB_REGISTRY_AUTH"];
  lab.registry_token_log = env["LAB_REGISTRY_TOKEN_LOG"];
  lab.key = env["LAB_KEY"];
  lab.known_hosts = env["LAB_KNOWN_HOSTS"];
  lab.docker_hosts = std::atoi(env["LAB_DOCKER_HOSTS"].c_str());
  for (const std::string& h : Split(env["LAB_HOSTS"], ' ')) {
    auto kv = Split(h, '=');
    if (kv.size() == 2) lab.hosts.push_back({kv[0], kv[1]});
  }
  if (lab.dir.empty() || lab.bastion.empty() || lab.hosts.empty()) {
    return Err(ErrorCode::kUnavailable, std::string("lab description ") + path + " is incomplete");
  }
  return lab;
}

SshOptions Lab::Ssh() const {
  SshOptions o;
  o.bastion = SshEndpoint{bastion, 22, "deploy"};
  o.identity_file = key;
  o.known_hosts = known_hosts;
  o.config_file = "none";
  o.default_user = "deploy";
  o.connect_timeout = Millis(5000);
  return o;
}

HostRef Lab::Host(size_t i) const { return HostRef{hosts.at(i).name, hosts.at(i).address, "deploy", 22}; }

int Lab::InHost(const std::string& name, const std::vector<std::string>& argv, std::string* out) const {
  std::string pid = Trim(ReadFile(dir + "/hosts/" + name + "/sshd.pid"));
  // -t/-m/-r/-w: the host's mount namespace *and* its root, so this also
  // works when the lab runs inside a chroot.
  std::vector<std::string> a{"nsenter", "-t", pid, "-m", "-r", "-w", "--net=/run/netns/" + prefix + "-" + name, "--"};
  a.insert(a.end(), argv.begin(), argv.end());
  return Run(a, out);
}

std::string Lab::SshdLog(const std::string& name) const { return ReadFile(dir + "/hosts/" + name + "/sshd.log"); }

int Lab::SshdLogCount(const std::string& name, const std::string& needle) const {
  const std::string log = SshdLog(name);
  int n = 0;
  for (size_t at = 0; (at = log.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

std::string Lab::Fingerprint(const std::string& name) const {
  std::string out;
  Run({"ssh-keygen", "-l", "-E", "sha256", "-f", dir + "/hosts/" + name + "/ssh_host_ed25519_key.pub"}, &out);
  auto parts = Split(out, ' ');
  return parts.size() > 1 ? parts[1] : "";
}

std::string Lab::HostKeyLine(const std::string& name) const {
  auto parts = Split(Trim(ReadFile(dir + "/hosts/" + name + "/ssh_host_ed25519_key.pub")), ' ');
  return parts.size() > 1 ? parts[0] + " " + parts[1] : "";
}

std::string Lab::EditedKnownHosts(const std::string& dir, const std::string& address,
                                  const std::string& replacement) const {
  const std::string path = dir + "/known_hosts";
  WriteFile(path, ReplaceKnownHost(ReadFile(known_hosts), address, replacement), 0600);
  return path;
}

std::string ReplaceKnownHost(const std::string& text, const std::string& address, const std::string& replacement) {
  std::string out;
  for (const std::string& line : Split(text, '\n')) {
    if (line.empty()) continue;
    if (!StartsWith(line, address + " ")) out += line + "\n";
    else if (!replacement.empty()) out += replacement + "\n";
  }
  return out;
}

std::string Lab::InventoryYaml(const std::string& backend, const std::string& extra_release,
                               const std::string& known) const {
  std::string y =
      "version: 1\n"
      "stacks:\n"
      "  demo:\n"
      "    requires_bastion: true\n"
      "    deployments:\n"
      "      integration:\n"
      "        network: lab\n"
      "        bastion: {address: " + bastion + ", user: deploy, key: " + key + "}\n"
      "        ssh: {known_hosts: " + (known.empty() ? known_hosts : known) + ", config: none, connect_timeout: 5s}\n"
      "        releases:\n"
      "          web:\n" + extra_release +
      "            load_balancers:\n"
      "              - {kind: haproxy, address: \"" + lb_api_address + ":" + std::to_string(lb_api_port) +
      "\", backend: " + backend + "}\n"
      "            hosts:\n";
  for (size_t i = 0; i < 3; ++i) y += "              - {name: " + hosts[i].name + ", address: " + hosts[i].address + "}\n";
  return y;
}

std::map<std::string, std::string> Lab::ServerStatus(SshTransport& ssh, const std::string& backend) const {
  auto sock = ssh.Forward(lb_api_address, lb_api_port);
  if (!sock) return {{"error", sock.error().message}};
  LoadBalancerSpec spec;
  spec.socket = *sock;
  spec.backend = backend;
  auto lb = MakeHaproxyLoadBalancer(spec);
  if (!lb) return {{"error", lb.error().message}};
  auto servers = (*lb)->ListBackend(backend);
  if (!servers) return {{"error", servers.error().message}};
  std::map<std::string, std::string> out;
  for (const auto& s : *servers) out[s.name] = s.InRotation() ? "UP" : s.status;
  return out;
}

std::string Lab::VersionOn(SshTransport& ssh, size_t i, int port) const {
  CommandSpec s;
  s.argv = {"curl", "-s", "-m", "2", "http://127.0.0.1:" + std::to_string(port) + "/"};
  s.timeout = Millis(5000);
  auto r = ssh.Run(Host(i), s);
  if (!r || !r->ok()) return "";
  auto pos = r->out.find("version=");
  if (pos == std::string::npos) return "";
  return Trim(r->out.substr(pos + 8, r->out.find_first_of(" \n", pos + 8) - pos - 8));
}

}  // namespace sp::test
