#include "rollout/masked_journal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.h"

namespace sp {
namespace {

using ::testing::HasSubstr;

TEST(MaskedJournalTest, WhatItWritesHoldsNoSecretValue) {
  auto store = std::move(*SqliteStore::Open(":memory:"));
  Masker m;
  MaskedJournal j(*store, m);
  RolloutRecord r;
  r.id = "r-1";
  r.stack = "s";
  r.release = "web";
  r.deployment = "prod";
  ASSERT_TRUE(j.CreateRollout(r));
  m.Add("pa55-w0rd-9");
  StepRecord s;
  s.rollout_id = "r-1";
  s.host = "app1";
  s.detail = R"J({"error":"health: HTTP 500: unhealthy (version pa55-w0rd-9)","step_ms":3})J";
  ASSERT_TRUE(j.AppendStep(s));
  HostRecord h;
  h.rollout_id = "r-1";
  h.host = "app1";
  h.detail = "not json pa55-w0rd-9";
  ASSERT_TRUE(j.PutHost(h));
  ASSERT_TRUE(j.FinishRollout("r-1", RolloutStatus::kFailed, "host app1: pa55-w0rd-9"));
  auto steps = store->Steps("r-1");
  ASSERT_TRUE(steps && steps->size() == 1u);
  EXPECT_EQ((*steps)[0].detail, R"J({"error":"health: HTTP 500: unhealthy (version ***)","step_ms":3})J");
  auto hosts = j.Hosts("r-1");
  ASSERT_TRUE(hosts && hosts->size() == 1u);
  EXPECT_EQ((*hosts)[0].detail, "not json ***");
  EXPECT_EQ(j.GetRollout("r-1")->error, "host app1: ***");
}

}  // namespace
}  // namespace sp
