// A JournalStore that masks secret values (secrets/masker.h) in what it
// writes: a rollout's final error, every step's and host's detail (a failed
// health check's answer, an app's last log lines). For rollouts a process
// runs with credential values it fetched: what the journal keeps, and every
// answer made from it, never holds them. Reads pass through. Header-only.
#pragma once

#include <nlohmann/json.hpp>

#include "rollout/journal.h"
#include "secrets/masker.h"

namespace sp {

class MaskedJournal final : public JournalStore {
 public:
  MaskedJournal(JournalStore& inner, const Masker& m) : inner_(inner), m_(m) {}
  Status CreateRollout(const RolloutRecord& r) override { return inner_.CreateRollout(r); }
  Status FinishRollout(const std::string& id, RolloutStatus status, const std::string& error) override {
    return inner_.FinishRollout(id, status, m_.Mask(error));
  }
  Result<RolloutRecord> GetRollout(const std::string& id) override { return inner_.GetRollout(id); }
  Result<std::optional<RolloutRecord>> Latest(const std::string& stack, const std::string& release,
                                              const std::string& deployment,
                                              std::optional<RolloutStatus> status) override {
    return inner_.Latest(stack, release, deployment, status);
  }
  Result<std::vector<RolloutRecord>> ListRollouts(int limit) override { return inner_.ListRollouts(limit); }
  Status AppendStep(const StepRecord& s) override {
    StepRecord masked = s;
    masked.detail = MaskedDetail(s.detail);
    return inner_.AppendStep(masked);
  }
  Result<std::vector<StepRecord>> Steps(const std::string& rollout_id) override { return inner_.Steps(rollout_id); }
  Status PutHost(const HostRecord& h) override {
    HostRecord masked = h;
    masked.detail = MaskedDetail(h.detail);
    return inner_.PutHost(masked);
  }
  Result<std::vector<HostRecord>> Hosts(const std::string& rollout_id) override { return inner_.Hosts(rollout_id); }

 private:
  std::string MaskedDetail(const std::string& text) const {
    if (m_.empty()) return text;
    auto doc = nlohmann::ordered_json::parse(text, nullptr, false);
    if (doc.is_discarded()) return m_.Mask(text);
    MaskJson(m_, doc);
    return doc.dump();
  }
  JournalStore& inner_;
  const Masker& m_;
};

}  // namespace sp
