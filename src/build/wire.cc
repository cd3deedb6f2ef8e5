#include "build/wire.h"

#include "core/text.h"

namespace sp {

nlohmann::ordered_json BuildToJson(const BuildRecord& b) {
  return {{"id", b.id},
          {"project", b.project},
          {"branch", b.branch},
          {"sha", b.sha},
          {"trigger", b.trigger},
          {"status", std::string(BuildStatusName(b.status))},
          {"author", b.author},
          {"message", b.message},
          {"artifact", b.artifact},
          {"deployment", b.deployment},
          {"error", b.error},
          {"created_ms", b.created_ms},
          {"started_ms", b.started_ms},
          {"finished_ms", b.finished_ms}};
}

nlohmann::ordered_json BuildStepToJson(const BuildStepRecord& x) {
  return {{"index", x.index},         {"name", x.name},           {"kind", x.kind},
          {"status", x.status},       {"exit_code", x.exit_code}, {"started_ms", x.started_ms},
          {"finished_ms", x.finished_ms}};
}

nlohmann::ordered_json ProjectToJson(const ProjectRecord& p) {
  return {{"name", p.name},
          {"git_url", p.git_url},
          {"webhook_secret_ref", p.webhook_secret_ref},
          {"credential_ref", p.credential_ref},
          {"known_hosts", p.known_hosts},
          {"created_ms", p.created_ms}};
}

nlohmann::ordered_json CredentialToJson(const CredentialBinding& c) {
  std::vector<std::string> hosts, deployments, branches;
  for (const auto& h : c.hosts) {
    if (StartsWith(h, CredentialBinding::kDeploymentPrefix)) {
      deployments.push_back(h.substr(std::string_view(CredentialBinding::kDeploymentPrefix).size()));
    } else if (StartsWith(h, CredentialBinding::kBranchPrefix)) {
      branches.push_back(h.substr(std::string_view(CredentialBinding::kBranchPrefix).size()));
    } else {
      hosts.push_back(h);
    }
  }
  return {{"project", c.project}, {"name", c.name},           {"ref", c.ref},
          {"hosts", hosts},       {"deployments", deployments}, {"branches", branches},
          {"created_ms", c.created_ms}};
}

nlohmann::ordered_json StoredSecretToJson(const StoredSecret& s) {
  return {{"project", s.project},     {"name", s.name},       {"scope", s.scope},
          {"version", s.version},     {"created_by", s.created_by}, {"created_ms", s.created_ms}};
}

}  // namespace sp
