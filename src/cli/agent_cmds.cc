// agent run | list, server
#include <cstdio>

#include "agent/agent_process.h"
#include "cli/command.h"
#include "core/digest.h"
#include "core/text.h"
#include "queue/wire.h"
#include "server/server_process.h"
#include "server/tls_init.h"

namespace sp::cli {

namespace {

int AgentRun(Context& ctx) {
  AgentProcessOptions o = ctx.a.agent;
  o.server = ctx.client().server;
  o.ca = ctx.client().ca;
  o.decorate_lb = ctx.ext.decorate_lb;
  o.observe_event = ctx.ext.observe_event;
  if (auto st = RunAgentProcess(o); !st) return Fail(st.error());
  return kExitOk;
}

int AgentList(Context& ctx) {
  auto d = ReadDoc(ctx, "/v1/agents", [](SqliteStore& s) -> Result<Doc> {
    SP_ASSIGN_OR_RETURN(auto agents, s.Agents());
    Doc out = Doc::array();
    for (const auto& ag : agents) out.push_back(AgentSeenToJson(ag));
    return Doc{{"agents", out}};
  });
  const int64_t now = ctx.Now();
  return PrintDoc(ctx, d, [now](const Doc& doc) {
    if (doc["agents"].empty()) std::printf("no agents seen\n");
    for (const auto& ag : doc["agents"]) {
      std::string labels;
      for (const auto& [k, v] : ag["labels"].items()) labels += (labels.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      const int64_t job = ag.value("current_job", int64_t{0});
      std::printf("%-20s %-24s seen %s  job %s\n", ag.value("name", "").c_str(), labels.c_str(),
                  Ago(ag.value("last_seen_ms", int64_t{0}), now).c_str(), job ? std::to_string(job).c_str() : "-");
    }
  });
}

int Server(Context& ctx) {
  ServerProcessOptions o = ctx.a.serve;
  o.store_path = ctx.StorePath();
  o.observe_event = ctx.ext.observe_event;
  if (auto st = RunServerProcess(o); !st) return Fail(st.error());
  return kExitOk;
}

int InitTlsCmd(Context& ctx) {
  const TlsInitArgs& a = ctx.a.tls_init;
  TlsInitOptions o{a.dir, a.names, a.ips};
  o.now_s = ctx.Now() / 1000;
  auto r = InitTls(o);
  if (!r) return Fail(r.error());
  if (r->created) {
    std::string names;
    for (const auto& n : r->names) names += (names.empty() ? "" : ", ") + n;
    for (const auto& ip : r->ips) names += ", " + ip;
    std::printf("server certificate %s for %s\n", r->server_cert.c_str(), names.c_str());
  } else {
    std::printf("kept the existing certificate %s\n", r->server_cert.c_str());
  }
  std::printf("CA %s  %s\n", r->ca_cert.c_str(), r->ca_fingerprint.c_str());
  std::printf("serve:   sallyport server --tls-cert %s --tls-key %s --listen ADDRESS:8700\n", r->server_cert.c_str(),
              r->server_key.c_str());
  std::printf("clients: --ca %s (or $SALLYPORT_CA); compare the fingerprint above out of band\n", r->ca_cert.c_str());
  return kExitOk;
}

void ServerOptions(CLI::App& app, Args& args) {
  ServerProcessOptions& a = args.serve;
  app.add_option("--listen", a.listen, "host:port (port 0: any free port); a non-loopback address needs TLS")
      ->capture_default_str();
  app.add_option("--tls-cert", a.tls_cert, "Serve HTTPS with this PEM certificate (chain); `server init-tls` makes one");
  app.add_option("--tls-key", a.tls_key, "The certificate's PEM private key");
  app.add_option("--retain", a.retain,
                 "Ended jobs, and job and build logs not written for this long, are removed (e.g. 30d; 0: never)")
      ->capture_default_str();
  app.add_option("--expire-every", a.expire_every,
                 "How often personal deployments past their TTL are torn down and released (0: never)")
      ->capture_default_str();
  app.add_option("--poll-every", a.poll_every, "How often every project's branches are polled (0: never)")
      ->capture_default_str();
  app.add_option("--builds", a.build_slots, "Builds run at once")->capture_default_str();
  app.add_option("--log-cap-mib", a.log_cap_mib,
                 "Each build's and job's log stops at this size (MiB), ending with a marker line")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-connections", a.max_connections,
                 "Connections held at once; past it the one idle longest is closed, or 503")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-connections-per-client", a.max_connections_per_client,
                 "Connections one client address may hold (429 beyond)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--docker-host", a.docker_host, "DOCKER_HOST for image and push steps");
  app.add_option("--step-user", a.step_user,
                 "Who the commits' command steps run as (default when run as root: nobody)");
  app.add_option("--deploy-on", a.deploy_on,
                 "Where builds' deploys run: agents (queued for an agent of the deployment's network) or server "
                 "(this process)")
      ->check(CLI::IsMember({"agents", "server"}))
      ->capture_default_str();
  app.add_option("--builds-on", a.builds_on,
                 "Where builds run: server (this process) or agents (queued for agents with the build labels)")
      ->check(CLI::IsMember({"agents", "server"}))
      ->capture_default_str();
  app.add_option("--build-label", a.build_labels, "key=value a build job requires of its agent (default role=builder)");
  app.add_flag("--routes", a.print_routes,
               "Print every API route and the scope it needs (public, agent, read, build, deploy, inventory:write, "
               "admin), then exit");
  app.add_flag("--requeue-interrupted", a.requeue_interrupted,
               "Queue builds a stopped server left running again (default: mark them interrupted)");
  app.add_option("--public-url", a.public_url, "This server's URL as people reach it, for notifications' links");
  app.add_option("--notify-attempts", a.notify_attempts, "Deliveries of a notification before it gives up")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--notify-backoff", a.notify_backoff, "The wait after a notification's first failed delivery (doubling, at most 60s)")
      ->capture_default_str();
  app.add_option("--vault-password-file", a.vault_password_file,
                 "The vault password (a file, or an executable printing it) of credentials bound to vault values");
  app.add_option("--vault-id", a.vault_ids, "[ID@]SOURCE: another vault password (repeat; old and new during a rekey)");
}

}  // namespace

std::vector<Command> AgentCommands() {
  return {
      {{"agent", "run"}, "Claim jobs from a server and run them here (builds and rollouts)", Kind::kRun, Where::kServer,
       [](CLI::App& app, Args& args) {
         AgentProcessOptions& a = args.agent;
         app.add_option("--token-file", a.token_file, "File holding this agent's token")->required();
         app.add_option("--work-dir", a.work_dir, "Where build jobs check out and build (default $TMPDIR/sallyport-agent-<pid>)");
         app.add_option("--docker-host", a.docker_host, "DOCKER_HOST for build jobs' image and push steps");
         app.add_option("--step-user", a.step_user,
                        "Who build jobs' command steps run as (default when run as root: nobody)");
         app.add_option("--lease", a.lease, "Job lease: renewed every quarter of it; when it lapses the job goes to another agent")
             ->capture_default_str();
       },
       AgentRun},
      {{"agent", "list"}, "Agents the server has seen: labels, last seen, current job", Kind::kRead, Where::kEither,
       nullptr, AgentList},
      {{"server"}, "Serve the HTTP API, poll projects, run or queue builds and deploys", Kind::kRun, Where::kLocal,
       ServerOptions, Server},
      {{"server", "init-tls"}, "Make a private CA and the server's certificate (keeps existing ones)", Kind::kWrite,
       Where::kNone,
       [](CLI::App& app, Args& args) {
         app.add_option("--dir", args.tls_init.dir, "Directory for ca.crt, ca.key, server.crt, server.key")->required();
         app.add_option("--name", args.tls_init.names, "A DNS name of the server (beside localhost and this host's name)");
         app.add_option("--ip", args.tls_init.ips, "An IP address of the server (beside 127.0.0.1 and ::1)");
       },
       InitTlsCmd},
  };
}

}  // namespace sp::cli
