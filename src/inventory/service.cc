#include "inventory/service.h"

#include <algorithm>
#include <set>

#include "core/text.h"

namespace sp::inventory {
namespace {

// Deep copy of an ordered_json through its text (types differ between the
// stored nlohmann::json and the ordered form).
Doc ParseDoc(const std::string& text) { return Doc::parse(text, nullptr, /*allow_exceptions=*/false); }

Status CheckPathName(const std::string& kind, const std::string& name) {
  const bool ok = kind == "host" ? IsValidHostName(name) : IsValidName(name);
  if (!ok) return Err(ErrorCode::kInvalidArgument, "invalid " + kind + " name '" + name + "'");
  return Ok();
}

// The stack's document path and the kind of object a path names.
struct Where {
  std::string stack;
  std::string deployment;  // Empty for a stack.
  std::string kind;        // "stack", "deployment", "release", "host".
  std::string name;        // The object's own name.
  std::string Describe() const {
    if (kind == "stack") return "stack '" + stack + "'";
    if (kind == "deployment") return "deployment '" + name + "' of stack '" + stack + "'";
    return kind + " '" + name + "' of deployment '" + deployment + "' of stack '" + stack + "'";
  }
};

Result<Where> ParsePath(const std::vector<std::string>& p) {
  auto bad = [&] {
    std::string s;
    for (const auto& part : p) s += "/" + part;
    return Err(ErrorCode::kNotFound, "no such inventory object path '" + s + "'");
  };
  Where w;
  if (p.size() < 2 || p[0] != "stacks") return bad();
  w.stack = p[1];
  SP_TRY(CheckPathName("stack", w.stack));
  if (p.size() == 2) {
    w.kind = "stack";
    w.name = w.stack;
    return w;
  }
  if (p.size() < 4 || p[2] != "deployments") return bad();
  w.deployment = p[3];
  SP_TRY(CheckPathName("deployment", w.deployment));
  if (p.size() == 4) {
    w.kind = "deployment";
    w.name = w.deployment;
    return w;
  }
  if (p.size() != 6) return bad();
  if (p[4] == "releases") w.kind = "release";
  else if (p[4] == "hosts") w.kind = "host";
  else return bad();
  w.name = p[5];
  SP_TRY(CheckPathName(w.kind, w.name));
  return w;
}

// The JSON holding the object's siblings, and the object (null when absent).
// For hosts (a list) the index is returned through *index.
Doc* Container(Doc& stack_doc, const Where& w) {
  if (w.kind == "deployment") return &stack_doc["deployments"];
  Doc& dep = stack_doc["deployments"][w.deployment];
  return w.kind == "release" ? &dep["releases"] : &dep["hosts"];
}

Doc* Find(Doc& stack_doc, const Where& w) {
  if (w.kind == "stack") return &stack_doc;
  if (!stack_doc.contains("deployments") || !stack_doc["deployments"].contains(w.deployment)) return nullptr;
  if (w.kind == "deployment") return &stack_doc["deployments"][w.deployment];
  Doc& dep = stack_doc["deployments"][w.deployment];
  if (w.kind == "release") {
    if (!dep.contains("releases") || !dep["releases"].contains(w.name)) return nullptr;
    return &dep["releases"][w.name];
  }
  if (!dep.contains("hosts")) return nullptr;
  for (auto& h : dep["hosts"]) {
    if (h.value("name", "") == w.name) return &h;
  }
  return nullptr;
}

std::string Names(const std::map<std::string, StackSpec>& m) {
  std::string n;
  for (const auto& [k, v] : m) n += (n.empty() ? "" : ", ") + k;
  return n.empty() ? "none" : n;
}

template <typename M>
void DiffMaps(const M& before, const M& after, const std::string& kind, const std::string& prefix,
              const std::function<Doc(const typename M::mapped_type&)>& json,
              const std::function<void(const typename M::mapped_type&, const typename M::mapped_type&)>& inner,
              std::vector<std::string>& out) {
  for (const auto& [name, a] : after) {
    auto b = before.find(name);
    if (b == before.end()) {
      out.push_back("+ " + kind + " " + prefix + name);
    } else if (json(b->second) != json(a)) {
      if (inner) {
        inner(b->second, a);
      } else {
        out.push_back("~ " + kind + " " + prefix + name);
      }
    }
  }
  for (const auto& [name, b] : before) {
    if (!after.count(name)) out.push_back("- " + kind + " " + prefix + name);
  }
}

// A stack holding only `d` (as "x"): the diff compares deployments in the stack's JSON shape.
StackSpec OnlyDeployment(const DeploymentSpec& d) {
  StackSpec s;
  s.deployments.emplace("x", d);
  return s;
}

// Lines describing how `after` differs from `before`, object by object.
std::vector<std::string> Diff(const Inventory& before, const Inventory& after) {
  std::vector<std::string> out;
  auto release_json = [](const ReleaseInventory& r) {
    DeploymentSpec d;
    d.releases.emplace(r.name, r);
    return StackToJson(OnlyDeployment(d));
  };
  auto dep_json = [](const DeploymentSpec& d) { return StackToJson(OnlyDeployment(d)); };
  auto dep_fields = [](DeploymentSpec d) {  // Without its releases and pool: its own fields.
    d.releases.clear();
    d.hosts.clear();
    return StackToJson(OnlyDeployment(d));
  };
  DiffMaps<std::map<std::string, StackSpec>>(
      before.stacks, after.stacks, "stack", "", [](const StackSpec& s) { return StackToJson(s); },
      [&](const StackSpec& b, const StackSpec& a) {
        StackSpec bs = b, as = a;
        bs.deployments.clear();
        as.deployments.clear();
        if (StackToJson(bs) != StackToJson(as)) out.push_back("~ stack " + a.name);
        DiffMaps<std::map<std::string, DeploymentSpec>>(
            b.deployments, a.deployments, "deployment", a.name + "/", dep_json,
            [&](const DeploymentSpec& bd, const DeploymentSpec& ad) {
              const std::string where = a.name + "/" + ad.name + "/";
              if (dep_fields(bd) != dep_fields(ad)) out.push_back("~ deployment " + a.name + "/" + ad.name);
              std::map<std::string, HostSpec> bh, ah;
              for (const auto& h : bd.hosts) bh[h.name] = h;
              for (const auto& h : ad.hosts) ah[h.name] = h;
              DiffMaps<std::map<std::string, HostSpec>>(
                  bh, ah, "host", where,
                  [](const HostSpec& h) {
                    DeploymentSpec d;
                    d.hosts = {h};
                    return StackToJson(OnlyDeployment(d));
                  },
                  nullptr, out);
              DiffMaps<std::map<std::string, ReleaseInventory>>(bd.releases, ad.releases, "release", where,
                                                                 release_json, nullptr, out);
            },
            out);
      },
      out);
  return out;
}

// `file`'s stack over `stored`: objects the file names replace the stored
// ones; without prune, stored objects the file omits stay. Claimed personal
// deployments are never the file's to change or prune.
StackSpec Merge(const StackSpec& stored, const StackSpec& file, bool prune, const std::set<std::string>& claimed) {
  StackSpec out = file;
  for (const auto& name : claimed) {
    auto it = stored.deployments.find(name);
    if (it != stored.deployments.end()) out.deployments[name] = it->second;
  }
  if (prune) return out;
  for (const auto& [dname, sd] : stored.deployments) {
    auto it = out.deployments.find(dname);
    if (it == out.deployments.end()) {
      out.deployments.emplace(dname, sd);
      continue;
    }
    DeploymentSpec& fd = it->second;
    for (const auto& [rname, sr] : sd.releases) fd.releases.emplace(rname, sr);  // Keeps the file's if both.
    for (const auto& h : sd.hosts) {
      bool named = std::any_of(fd.hosts.begin(), fd.hosts.end(), [&](const HostSpec& x) { return x.name == h.name; });
      if (!named) fd.hosts.push_back(h);
    }
  }
  return out;
}

// A request's JSON has no useful line numbers (it was re-serialised): its
// errors name the field as a JSON pointer from the inventory's root,
// "request:53: stacks.demo.deployments.local.hosts[0].address: invalid ..."
// -> "/stacks/demo/deployments/local/hosts/0/address: invalid ...".
Error WithPointer(Error e) {
  const std::string prefix = "request:";
  if (e.message.rfind(prefix, 0) != 0) return e;
  size_t line_end = e.message.find(": ", prefix.size());
  if (line_end == std::string::npos) return e;
  size_t path_end = e.message.find(": ", line_end + 2);
  if (path_end == std::string::npos) return e;
  std::string pointer;
  for (char c : e.message.substr(line_end + 2, path_end - line_end - 2)) {
    if (c == '.' || c == '[') pointer += '/';
    else if (c != ']') pointer += c;
  }
  e.message = "/" + pointer + e.message.substr(path_end);
  return e;
}

}  // namespace

Result<StackSpec> ParseStackDoc(const std::string& name, const Doc& doc, const std::string& where) {
  Doc wrapped;
  wrapped["version"] = 1;
  wrapped["stacks"][name] = doc;
  SP_ASSIGN_OR_RETURN(Inventory inv, ParseInventory(wrapped.dump(1), where));
  return std::move(inv.stacks.at(name));
}

Service::Service(InventoryStore& store, ServiceOptions options) : store_(store), options_(std::move(options)) {}

Result<std::shared_ptr<const Inventory>> Service::Current() {
  int64_t rev = 0;
  SP_ASSIGN_OR_RETURN(Snapshot snap, Current(&rev));
  return snap.inventory;
}

Result<Service::Snapshot> Service::Current(int64_t* revision) {
  std::lock_guard lk(mu_);
  SP_ASSIGN_OR_RETURN(int64_t rev, store_.InventoryRevision());
  *revision = rev;
  if (cached_ && rev == cached_revision_) return Snapshot{rev, cached_};
  SP_ASSIGN_OR_RETURN(auto stacks, store_.InventoryStacks());
  auto inv = std::make_shared<Inventory>();
  inv->file = "the inventory store";
  for (const auto& rec : stacks) {
    // Validated when written: the cheap reader (ParseStackDoc's YAML tree of
    // 10,000 hosts alone took ~40 MB).
    SP_ASSIGN_OR_RETURN(StackSpec s, StackFromJson(rec.name, nlohmann::json::parse(rec.doc, nullptr, false)));
    inv->stacks.emplace(rec.name, std::move(s));
  }
  cached_ = std::move(inv);
  cached_revision_ = rev;
  return Snapshot{rev, cached_};
}

Result<ApplyResult> Service::Apply(const Inventory& file, bool prune, bool dry_run) {
  ApplyResult result;
  auto plan = [&](const std::vector<StackRecord>& stored_recs, const std::vector<ClaimRecord>& claims,
                  Inventory* merged) -> Status {
    Inventory before;
    for (const auto& rec : stored_recs) {
      SP_ASSIGN_OR_RETURN(StackSpec s, ParseStackDoc(rec.name, ParseDoc(rec.doc), "stored stack " + rec.name));
      before.stacks.emplace(rec.name, std::move(s));
    }
    for (const auto& [name, fs] : file.stacks) {
      auto it = before.stacks.find(name);
      std::set<std::string> claimed;
      for (const auto& c : claims) {
        if (c.stack == name) claimed.insert(c.deployment);
      }
      StackSpec m = it == before.stacks.end() ? fs : Merge(it->second, fs, prune, claimed);
      // Validated as a whole, as the file would be (kept objects included).
      SP_ASSIGN_OR_RETURN(StackSpec checked, ParseStackDoc(name, StackToJson(m), file.file + " (merged with the store)"));
      merged->stacks.emplace(name, std::move(checked));
    }
    if (!prune) {
      for (const auto& [name, s] : before.stacks) merged->stacks.emplace(name, s);  // No-op where present.
    }
    result.changes = Diff(before, *merged);
    return Ok();
  };
  if (dry_run) {
    SP_ASSIGN_OR_RETURN(auto stored, store_.InventoryStacks());
    SP_ASSIGN_OR_RETURN(auto claims, store_.InventoryClaims());
    Inventory merged;
    SP_TRY(plan(stored, claims, &merged));
    return result;
  }
  SP_TRY(store_.InventoryWrite([&](InventoryTxn& txn) -> Status {
    SP_ASSIGN_OR_RETURN(auto stored, txn.Stacks());
    SP_ASSIGN_OR_RETURN(auto claims, txn.Claims());
    Inventory merged;
    SP_TRY(plan(stored, claims, &merged));
    for (const auto& rec : stored) {
      if (!merged.stacks.count(rec.name)) SP_TRY(txn.DeleteStack(rec.name));
    }
    for (const auto& [name, s] : merged.stacks) {
      const std::string doc = StackToJson(s).dump();
      auto old = std::find_if(stored.begin(), stored.end(), [&](const StackRecord& r) { return r.name == name; });
      if (old == stored.end() || ParseDoc(old->doc) != ParseDoc(doc)) SP_TRY(txn.PutStack(name, doc));
    }
    return Ok();
  }));
  return result;
}

Result<ResolvedTarget> Service::Resolve(const std::string& stack, const std::string& release,
                                        const std::string& deployment, const std::string& limit) {
  SP_ASSIGN_OR_RETURN(auto inv, Current());
  return ::sp::Resolve(*inv, stack, release, deployment, limit, options_.run_source);
}

Result<Doc> Service::Get(const std::vector<std::string>& path) {
  SP_ASSIGN_OR_RETURN(Where w, ParsePath(path));
  SP_ASSIGN_OR_RETURN(auto inv, Current());
  auto s = inv->stacks.find(w.stack);
  if (s == inv->stacks.end()) {
    return Err(ErrorCode::kNotFound, "stack '" + w.stack + "' not found (stacks: " + Names(inv->stacks) + ")");
  }
  Doc doc = StackToJson(s->second);
  const Doc* found = Find(doc, w);
  if (!found) return Err(ErrorCode::kNotFound, w.Describe() + " not found");
  return *found;
}

Result<bool> Service::Put(const std::vector<std::string>& path, const Doc& value) {
  SP_ASSIGN_OR_RETURN(Where w, ParsePath(path));
  if (!value.is_object()) return Err(ErrorCode::kInvalidArgument, "the body must be a JSON object (" + w.kind + ")");
  if (w.kind == "host" && value.value("name", "") != w.name) {
    return Err(ErrorCode::kInvalidArgument, "/name: must be '" + w.name + "' (the host's name in the path)");
  }
  bool created = false;
  SP_TRY(store_.InventoryWrite([&](InventoryTxn& txn) -> Status {
    SP_ASSIGN_OR_RETURN(auto rec, txn.Stack(w.stack));
    Doc doc = rec ? ParseDoc(rec->doc) : Doc::object();
    if (!rec && w.kind != "stack") {
      return Err(ErrorCode::kNotFound, "stack '" + w.stack + "' not found; create it first");
    }
    if (w.kind != "stack" && w.kind != "deployment" && !Find(doc, Where{w.stack, w.deployment, "deployment", w.deployment})) {
      return Err(ErrorCode::kNotFound, "deployment '" + w.deployment + "' of stack '" + w.stack + "' not found");
    }
    Doc* existing = w.kind == "stack" ? (rec ? &doc : nullptr) : Find(doc, w);
    created = existing == nullptr;
    if (w.kind == "stack") {
      doc = value;
    } else if (existing) {
      *existing = value;
    } else if (w.kind == "host") {
      (*Container(doc, w)).push_back(value);
    } else {
      (*Container(doc, w))[w.name] = value;
    }
    auto checked = ParseStackDoc(w.stack, doc, "request");
    if (!checked) return Err(WithPointer(checked.error()));
    return txn.PutStack(w.stack, StackToJson(*checked).dump());
  }));
  return created;
}

Status Service::Delete(const std::vector<std::string>& path) {
  SP_ASSIGN_OR_RETURN(Where w, ParsePath(path));
  return store_.InventoryWrite([&](InventoryTxn& txn) -> Status {
    SP_ASSIGN_OR_RETURN(auto rec, txn.Stack(w.stack));
    if (!rec) return Err(ErrorCode::kNotFound, "stack '" + w.stack + "' not found");
    if (w.kind == "stack") return txn.DeleteStack(w.stack);
    Doc doc = ParseDoc(rec->doc);
    if (!Find(doc, w)) return Err(ErrorCode::kNotFound, w.Describe() + " not found");
    Doc& siblings = *Container(doc, w);
    if (w.kind == "host") {
      for (auto it = siblings.begin(); it != siblings.end(); ++it) {
        if (it->value("name", "") == w.name) {
          siblings.erase(it);
          break;
        }
      }
    } else {
      siblings.erase(w.name);
    }
    // Still valid without it? (A release naming a deleted pool host is not.)
    SP_ASSIGN_OR_RETURN(StackSpec checked, ParseStackDoc(w.stack, doc, "after deleting " + w.Describe()));
    return txn.PutStack(w.stack, StackToJson(checked).dump());
  });
}

// ---------------------------------------------------------------- personal deployments

Result<ClaimRecord> Service::Claim(const std::string& stack, const std::string& template_name,
                                   const std::string& user, int64_t now_ms) {
  if (!IsValidUser(user)) {
    return Err(ErrorCode::kInvalidArgument, "invalid user name '" + user + "' (expected [a-z0-9][a-z0-9-]{0,31})");
  }
  ClaimRecord out;
  SP_TRY(store_.InventoryWrite([&](InventoryTxn& txn) -> Status {
    SP_ASSIGN_OR_RETURN(auto rec, txn.Stack(stack));
    if (!rec) return Err(ErrorCode::kNotFound, "stack '" + stack + "' not found");
    SP_ASSIGN_OR_RETURN(StackSpec s, ParseStackDoc(stack, ParseDoc(rec->doc), "stored stack " + stack));
    auto t = s.templates.find(template_name);
    if (t == s.templates.end()) {
      std::string names;
      for (const auto& [n, x] : s.templates) names += (names.empty() ? "" : ", ") + n;
      return Err(ErrorCode::kNotFound, "template '" + template_name + "' not found in stack '" + stack +
                                           "' (templates: " + (names.empty() ? "none" : names) + ")");
    }
    SP_ASSIGN_OR_RETURN(auto claims, txn.Claims());
    std::set<std::string> taken;
    for (const auto& c : claims) {
      if (c.stack != stack) continue;
      if (c.template_name == template_name && c.user == user) {
        out = c;  // Already this user's: the same claim again.
        return Ok();
      }
      if (c.template_name == template_name) taken.insert(c.host);
    }
    const HostSpec* free_host = nullptr;
    for (const auto& h : t->second.deployment.hosts) {
      if (!taken.count(h.name)) {
        free_host = &h;
        break;
      }
    }
    if (!free_host) {
      return Err(ErrorCode::kConflict, "no free host in the pool of template '" + template_name + "' (all " +
                                           std::to_string(t->second.deployment.hosts.size()) + " claimed)");
    }
    SP_ASSIGN_OR_RETURN(DeploymentSpec d, MaterializeTemplate(s, t->second, user, *free_host));
    if (s.deployments.count(d.name)) {
      return Err(ErrorCode::kConflict, "deployment '" + d.name + "' exists in stack '" + stack + "' and is not a claim");
    }
    const std::string name = d.name;
    s.deployments.emplace(name, std::move(d));
    SP_ASSIGN_OR_RETURN(StackSpec checked, ParseStackDoc(stack, StackToJson(s), "claim of " + name));
    SP_TRY(txn.PutStack(stack, StackToJson(checked).dump()));
    out = ClaimRecord{stack, template_name, user, name, free_host->name, now_ms,
                      t->second.ttl_ms ? now_ms + t->second.ttl_ms : 0};
    return txn.PutClaim(out);
  }));
  return out;
}

Result<std::vector<ClaimRecord>> Service::Claims() { return store_.InventoryClaims(); }

Status Service::Release(const std::string& stack, const std::string& deployment, const Teardown& teardown) {
  SP_ASSIGN_OR_RETURN(auto claims, store_.InventoryClaims());
  auto claim = std::find_if(claims.begin(), claims.end(),
                            [&](const ClaimRecord& c) { return c.stack == stack && c.deployment == deployment; });
  if (claim == claims.end()) {
    return Err(ErrorCode::kNotFound, "deployment '" + deployment + "' of stack '" + stack + "' is not a claim");
  }
  // Tear down first (network I/O, outside any transaction); the claim stays
  // if it fails, so a retry or the next expiry run tries again.
  if (teardown) {
    SP_ASSIGN_OR_RETURN(auto inv, Current());
    const auto& dep = inv->stacks.at(stack).deployments.at(deployment);
    for (const auto& [release, r] : dep.releases) {
      SP_ASSIGN_OR_RETURN(ResolvedTarget target, ::sp::Resolve(*inv, stack, release, deployment));
      if (auto st = teardown(target); !st) {
        return Err(st.error().Wrap("teardown of " + deployment + " (release " + release + ", host " + claim->host + ")"));
      }
    }
  }
  return store_.InventoryWrite([&](InventoryTxn& txn) -> Status {
    SP_ASSIGN_OR_RETURN(auto rec, txn.Stack(stack));
    if (rec) {
      Doc doc = ParseDoc(rec->doc);
      if (doc.contains("deployments")) doc["deployments"].erase(deployment);
      SP_TRY(txn.PutStack(stack, doc.dump()));
    }
    return txn.DeleteClaim(stack, deployment);
  });
}

Result<std::vector<ClaimRecord>> Service::Expire(int64_t now_ms, const Teardown& teardown) {
  SP_ASSIGN_OR_RETURN(auto claims, store_.InventoryClaims());
  std::vector<ClaimRecord> released;
  std::optional<Error> first;
  for (const auto& c : claims) {
    if (c.expires_ms == 0 || c.expires_ms > now_ms) continue;
    if (auto st = Release(c.stack, c.deployment, teardown); !st) {
      if (!first) first = st.error();
      continue;
    }
    released.push_back(c);
  }
  if (first) return Err(*first);
  return released;
}

}  // namespace sp::inventory
