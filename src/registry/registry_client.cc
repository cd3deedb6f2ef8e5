#include "registry/registry_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "config/service_config.h"
#include "core/curl_global.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "registry/challenge.h"

namespace sp {
namespace {

constexpr size_t kMaxBody = 1 << 20;
constexpr std::string_view kAccept =
    "Accept: application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

std::vector<std::string> SplitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (const auto& part : Split(s, sep)) {
    std::string t = Trim(part);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

RegistryTrust RegistryTrust::FromEnvironment() {
  RegistryTrust t;
  if (const char* d = std::getenv("SALLYPORT_REGISTRY_CERTS_D")) t.certs_dirs = SplitList(d, ':');
  if (const char* i = std::getenv("SALLYPORT_INSECURE_REGISTRIES")) t.insecure = SplitList(i, ',');
  return t;
}

struct RegistryClient::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // Lowercased names; the last value.
  std::string body;
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? std::string() : it->second;
  }
};

RegistryClient::RegistryClient(RegistryClientOptions o, Clock& clock) : o_(std::move(o)), clock_(clock) {}

int64_t RegistryClient::requests() const {
  std::lock_guard l(mu_);
  return requests_;
}

std::string RegistryClient::CaFileFor(const std::string& host_port) const {
  std::vector<std::string> dirs = o_.trust.certs_dirs;
  if (dirs.empty()) dirs = {"/etc/sallyport/certs.d", "/etc/docker/certs.d"};
  for (const auto& d : dirs) {
    const std::string f = d + "/" + host_port + "/ca.crt";
    if (::access(f.c_str(), R_OK) == 0) return f;
  }
  return "";
}

Result<RegistryClient::Response> RegistryClient::Send(const std::string& method, const std::string& url,
                                                      const std::vector<std::string>& headers,
                                                      const RegistryCredential* basic, const std::string& ca_of) {
  auto parts = registry::ParseHttpUrl(url);
  if (!parts) return Err(ErrorCode::kInvalidArgument, "not an http(s) URL: " + Printable(url));
  std::string socket;
  if (o_.route) {
    const int port = parts->port ? parts->port : (parts->scheme == "https" ? 443 : 80);
    SP_ASSIGN_OR_RETURN(socket, o_.route(parts->host, port));
  }
  {
    std::lock_guard l(mu_);
    ++requests_;
  }
  CurlGlobalInitOnce();
  CURL* c = curl_easy_init();
  if (!c) return Err(ErrorCode::kInternal, "curl init failed");
  Response r;
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  auto on_header = +[](char* p, size_t size, size_t n, void* ud) -> size_t {
    auto* resp = static_cast<Response*>(ud);
    std::string line(p, size * n);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string k = line.substr(0, colon);
      for (char& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      resp->headers[k] = Trim(line.substr(colon + 1));
    }
    return size * n;
  };
  auto on_body = +[](char* p, size_t size, size_t n, void* ud) -> size_t {
    auto* resp = static_cast<Response*>(ud);
    if (resp->body.size() + size * n > kMaxBody) return 0;
    resp->body.append(p, size * n);
    return size * n;
  };
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout.count()));
  // The host's own CA, else (a token realm) the registry's, as docker does.
  std::string ca = parts->scheme == "https" ? CaFileFor(parts->HostPort()) : "";
  if (ca.empty() && parts->scheme == "https" && !ca_of.empty()) ca = CaFileFor(ca_of);
  if (!ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  if (basic) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, basic->username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, basic->secret.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  const std::string where = parts->HostPort();
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM) {
    return Err(ErrorCode::kUnavailable,
               where + ": its TLS certificate is not trusted (" + curl_easy_strerror(rc) + "); put its CA in " +
                   (o_.trust.certs_dirs.empty() ? std::string("/etc/sallyport/certs.d") : o_.trust.certs_dirs[0]) +
                   "/" + where + "/ca.crt");
  }
  if (rc != CURLE_OK) return Err(ErrorCode::kUnavailable, where + " unreachable: " + curl_easy_strerror(rc));
  return r;
}

Result<std::string> RegistryClient::FetchToken(const std::string& registry,
                                               const std::map<std::string, std::string>& params,
                                               const std::string& scope, const std::optional<RegistryCredential>& cred,
                                               bool registry_https, std::string* note) {
  auto get = [&](const char* k) {
    auto it = params.find(k);
    return it == params.end() ? std::string() : it->second;
  };
  const std::string realm = get("realm"), service = get("service");
  auto url = registry::ParseHttpUrl(realm);
  if (!url) {
    return Err(ErrorCode::kUnavailable, "registry " + registry + " names a token realm that is no http(s) URL: '" +
                                            Printable(realm.substr(0, 200)) + "'");
  }
  if (url->scheme != "https" && !IsLoopbackHost(url->host)) {
    return Err(ErrorCode::kInvalidArgument,
               "registry " + registry + " names a plain-HTTP token realm " + url->HostPort() + " (HTTPS required)");
  }
  const std::string key = realm + "|" + service + "|" + scope + "|" + (cred ? cred->username : "");
  {
    std::lock_guard l(mu_);
    auto it = tokens_.find(key);
    if (it != tokens_.end() && it->second.expires_mono_ms > clock_.MonotonicMs()) return it->second.value;
  }
  const bool trusted = registry::RealmMayGetCredentials(registry, *url, cred ? cred->realm_hosts : std::vector<std::string>{});
  const bool secure = registry::CredentialsTravelSafely(registry, registry_https, *url);
  const RegistryCredential* send = cred && trusted && secure ? &*cred : nullptr;
  std::string full = realm + (realm.find('?') == std::string::npos ? "?" : "&") + "service=" + UrlQuery(service);
  if (!scope.empty()) full += "&scope=" + UrlQuery(scope);
  SP_ASSIGN_OR_RETURN(Response r, Send("GET", full, {}, send, registry));
  const std::string who = cred && send ? " for user '" + cred->username + "'" : std::string(" anonymously");
  const std::string why_anon =
      cred && !send ? "; its token realm " + url->HostPort() +
                          (trusted ? " is not reached over TLS" : " is not the registry's host nor allowed for this credential") +
                          ", so it was sent no credentials"
                    : "";
  if (note) *note = why_anon;
  if ((r.status == 401 || r.status == 403) && send) {
    return Err(ErrorCode::kPermissionDenied, "registry " + registry + " rejected the credentials of user '" +
                                                 cred->username + "' (its token realm " + url->HostPort() +
                                                 " answered HTTP " + std::to_string(r.status) + ")");
  }
  if (r.status != 200) {
    return Err(r.status == 401 || r.status == 403 ? ErrorCode::kPermissionDenied : ErrorCode::kUnavailable,
               "registry " + registry + ": token realm " + url->HostPort() + " refused a token" + who + " (HTTP " +
                   std::to_string(r.status) + ")" + why_anon);
  }
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  std::string token;
  int64_t expires_s = 60;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"].get<std::string>();
    }
    if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
      expires_s = std::clamp<int64_t>(j["expires_in"].get<int64_t>(), 0, 24 * 3600);
    }
  }
  if (token.empty() || !IsSafeValue(token)) {
    return Err(ErrorCode::kUnavailable, "registry " + registry + ": token realm " + url->HostPort() +
                                            " answered no token" + why_anon);
  }
  std::lock_guard l(mu_);
  // Ten seconds of margin for the time the request itself takes.
  tokens_[key] = Token{token, clock_.MonotonicMs() + std::max<int64_t>(0, expires_s - 10) * 1000};
  return token;
}

Result<RegistryClient::Response> RegistryClient::Authorized(const std::string& domain, const std::string& registry,
                                                            const std::string& path, const std::string& scope,
                                                            const std::optional<RegistryCredential>& cred,
                                                            bool insecure, std::string* why_denied) {
  const bool loopback = IsLoopbackHost(registry::HostOnly(registry));
  if (insecure && !loopback && !Contains(o_.trust.insecure, registry) && !Contains(o_.trust.insecure, domain)) {
    return Err(ErrorCode::kInvalidArgument,
               "registry " + domain +
                   ": plain HTTP (insecure: true) is refused for an address beyond loopback unless this machine's "
                   "admin allows it (SALLYPORT_INSECURE_REGISTRIES=" + domain + ")");
  }
  const bool https = !insecure;
  const std::string url = std::string(https ? "https://" : "http://") + registry + path;
  // Basic credentials only over TLS or to loopback.
  const RegistryCredential* basic_ok = cred && (https || loopback) ? &*cred : nullptr;

  std::optional<std::map<std::string, std::string>> known;
  bool basic = false;
  {
    std::lock_guard l(mu_);
    if (auto it = challenges_.find(registry); it != challenges_.end()) known = it->second;
    basic = basic_.count(registry) > 0;
  }
  std::string anon_note;  // Why the realm was asked without credentials.
  auto attempt = [&]() -> Result<Response> {
    std::vector<std::string> headers{std::string(kAccept)};
    if (known) {
      SP_ASSIGN_OR_RETURN(std::string token, FetchToken(registry, *known, scope, cred, https, &anon_note));
      headers.push_back("Authorization: Bearer " + token);
      return Send("HEAD", url, headers, nullptr);
    }
    return Send("HEAD", url, headers, basic ? basic_ok : nullptr);
  };
  SP_ASSIGN_OR_RETURN(Response r, attempt());
  if (r.status == 401) {
    auto ch = registry::ParseChallenge(r.Header("www-authenticate"));
    if (ch && ch->scheme == "bearer" && !ch->Param("realm").empty() && !known) {
      known = ch->params;
      {
        std::lock_guard l(mu_);
        challenges_[registry] = ch->params;
      }
      SP_ASSIGN_OR_RETURN(r, attempt());
    } else if (ch && ch->scheme == "basic" && !basic && basic_ok) {
      basic = true;
      {
        std::lock_guard l(mu_);
        basic_[registry] = true;
      }
      SP_ASSIGN_OR_RETURN(r, attempt());
    }
  }
  if (r.status == 401 || r.status == 403) {
    const std::string user = cred ? " of user '" + cred->username + "'" : std::string(" (none given)");
    std::string realm;
    if (known) realm = ", token realm " + (known->count("realm") ? Printable(known->at("realm")) : std::string("?"));
    if (cred && !basic_ok && !known) realm += "; credentials are sent only over HTTPS or to loopback";
    *why_denied = "registry " + domain + " rejected the credentials" + user + realm + " (HTTP " +
                  std::to_string(r.status) + ")" + anon_note;
  }
  return r;
}

Result<std::string> RegistryClient::ManifestDigest(const ImageRef& image, const std::optional<RegistryCredential>& cred,
                                                   bool insecure) {
  std::string denied;
  SP_ASSIGN_OR_RETURN(Response r, Authorized(image.domain, image.ApiHost(),
                                             "/v2/" + image.path + "/manifests/" + image.Reference(),
                                             "repository:" + image.path + ":pull", cred, insecure, &denied));
  switch (r.status) {
    case 200: {
      std::string digest = r.Header("docker-content-digest");
      if (digest.empty()) digest = image.digest;
      return digest;
    }
    case 401:
    case 403:
      return Err(ErrorCode::kPermissionDenied, denied);
    case 404:
      return Err(ErrorCode::kNotFound, "image " + image.Full() + " not found in registry " + image.domain);
    default:
      return Err(ErrorCode::kUnavailable,
                 "registry " + image.domain + " answered HTTP " + std::to_string(r.status) + " for " + image.Full());
  }
}

Status RegistryClient::Ping(const std::string& address, const std::optional<RegistryCredential>& cred, bool insecure) {
  const std::string api = address == kDockerHub || address == "index.docker.io" ? "registry-1.docker.io" : address;
  std::string denied;
  SP_ASSIGN_OR_RETURN(Response r, Authorized(address, api, "/v2/", "", cred, insecure, &denied));
  if (r.status == 200) return Ok();
  if (r.status == 401 || r.status == 403) return Err(ErrorCode::kPermissionDenied, denied);
  return Err(ErrorCode::kUnavailable, "registry " + address + " answered HTTP " + std::to_string(r.status) + " for /v2/");
}

Result<RegistryCredential> CredentialFromHelper(const std::string& helper, const std::string& server, Millis timeout) {
  if (!IsValidHelperName(helper)) {
    return Err(ErrorCode::kInvalidArgument, "credential helper name '" + Printable(helper.substr(0, 80)) +
                                                "' is not [a-z0-9-]+");
  }
  CommandSpec spec;
  spec.argv = {"docker-credential-" + helper, "get"};
  spec.stdin_data = server;
  spec.timeout = timeout;
  auto run = SystemProcesses().Run(spec);
  if (!run) return Err(run.error().Wrap("credential helper docker-credential-" + helper));
  if (!run->ok()) {
    // Its stdout may hold a secret; its exit says enough.
    return Err(ErrorCode::kUnavailable, "credential helper docker-credential-" + helper + " failed for " + server +
                                            (run->timed_out ? " (timed out)" : " (exit " + std::to_string(run->exit_code) + ")"));
  }
  nlohmann::json j = nlohmann::json::parse(run->out, nullptr, false);
  if (!j.is_object() || !j.contains("Secret") || !j["Secret"].is_string()) {
    return Err(ErrorCode::kUnavailable,
               "credential helper docker-credential-" + helper + " answered no {\"Username\",\"Secret\"} for " + server);
  }
  RegistryCredential c;
  c.secret = j["Secret"].get<std::string>();
  if (j.contains("Username") && j["Username"].is_string()) c.username = j["Username"].get<std::string>();
  if (!IsSafeValue(c.username) || !IsSafeValue(c.secret)) {
    return Err(ErrorCode::kUnavailable, "credential helper docker-credential-" + helper + " answered an unusable value");
  }
  return c;
}

}  // namespace sp
