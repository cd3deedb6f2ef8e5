// The CLI's command table, walked from the binary's own listing
// (`sallyport __commands`): every read command's --output json parses, on
// the local store and through a server alike; bad usage of every command
// exits 2; reserved verbs exit 4.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "core/digest.h"
#include "core/file.h"
#include "core/text.h"
#include "inventory/inventory.h"
#include "inventory/service.h"
#include "store/sqlite/sqlite_store.h"
#include "support/cli_runner.h"
#include "support/server_process.h"
#include "support/test_util.h"

namespace sp::test {
namespace {

using json = nlohmann::json;

const char* kInventory = R"(version: 1
stacks:
  demo:
    deployments:
      dev:
        network: dev
        releases:
          web:
            load_balancers: none
            hosts:
              - {name: app1, address: 127.0.0.1, port: 18181}
)";

class CliTableTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("sp-cli-table");
    db_ = *dir_ / "state.db";
    Seed();
    server_ = new ServerProcess(*dir_, db_, "server", {"--poll-every", "0"});
    ASSERT_TRUE(server_->ready()) << server_->Log();
    auto listing = RunSallyport({"__commands"});
    ASSERT_EQ(listing.exit_code, 0) << listing.err;
    table_ = new json(json::parse(listing.out));
  }
  static void TearDownTestSuite() {
    delete server_;
    delete table_;
    delete dir_;
  }

  // Records of every kind, written through the store's own interfaces.
  static void Seed() {
    auto store = std::move(*SqliteStore::Open(db_));
    inventory::Service inv(*store);
    ASSERT_TRUE(inv.Apply(*ParseInventory(kInventory, "inventory.yml"), false, false));
    RolloutRecord r{"r-seed", "web", "dev", "demo", PlanKind::kRollout, RolloutStatus::kRunning,
                    R"({"app": {"version": "v2", "artifact": "/bin/true"}})", "", 1000, 1000};
    ASSERT_TRUE(store->CreateRollout(r));
    ASSERT_TRUE(store->PutHost(HostRecord{"r-seed", "app1", HostState::kInProgress, Step::kDrain, 0, ""}));
    ASSERT_TRUE(store->AppendStep(StepRecord{0, "r-seed", "app1", Step::kDrain, StepPhase::kBegin, 1000, ""}));
    Lease l;
    l.key = "demo/web/dev";
    l.holder = "ops@box pid 1";
    l.token = "t";
    ASSERT_TRUE(store->Acquire(l, 1000, 3'600'000'000'000));
    JobSpec spec;
    spec.kind = "rollout";
    spec.payload = "{}";
    spec.labels = {{"network", "dev"}};
    job_id_ = store->Enqueue(spec, 1000)->id;
    ASSERT_TRUE(store->PutProject(ProjectRecord{"hello", "git://127.0.0.1:9/hello.git", "", 1000, "", ""}));
    BuildRecord b;
    b.project = "hello";
    b.branch = "integration";
    b.sha = std::string(40, 'a');
    b.trigger = "manual";
    BuildRecord made = **store->CreateBuild(b);
    made.status = BuildStatus::kSucceeded;  // Done: the server's workers leave it be.
    ASSERT_TRUE(store->UpdateBuild(made));
    build_id_ = made.id;
    ASSERT_TRUE(store->PutAgentToken(Sha256Hex("x"), QueueStore::AgentToken{"dc1", {{"network", "dev"}}}));
    ASSERT_TRUE(store->TouchAgent(QueueStore::AgentToken{"dc1", {{"network", "dev"}}}, 1000, std::nullopt));
    // A line in each log.
    std::filesystem::create_directories(*dir_ / "jobs");
    std::filesystem::create_directories(*dir_ / "builds/logs");
    WriteFile(*dir_ / ("jobs/" + std::to_string(job_id_) + ".log"), "1000\tagent\tout\tjob claimed\n");
    WriteFile(*dir_ / ("builds/logs/" + std::to_string(build_id_) + ".log"), "1000\tcheckout\tout\tchecked out\n");
  }

  // The arguments a command's positionals and required options take here;
  // a command this test does not know fails it (add its values below).
  static std::vector<std::string> ArgsFor(const json& cmd) {
    const std::map<std::string, std::string> values = {
        {"rollout status id", "r-seed"},    {"rollout show id", "r-seed"}, {"job show id", std::to_string(job_id_)},
        {"job logs id", std::to_string(job_id_)}, {"build show id", std::to_string(build_id_)},
        {"build logs id", std::to_string(build_id_)}, {"inventory get path", "stacks/demo"},
        {"credential list project", "web"}, {"secrets list project", "web"},
        {"--stack", "demo"},                {"--release", "web"},          {"--deployment", "dev"},
    };
    std::vector<std::string> args = cmd["path"].get<std::vector<std::string>>();
    const std::string path = Join(args);
    for (const auto& p : cmd["positionals"]) {
      auto it = values.find(path + " " + p.get<std::string>());
      if (it == values.end()) {
        ADD_FAILURE() << "no value for positional '" << p << "' of `" << path << "`";
        continue;
      }
      args.push_back(it->second);
    }
    for (const auto& o : cmd["required"]) {
      auto it = values.find(o.get<std::string>());
      if (it == values.end()) {
        ADD_FAILURE() << "no value for required " << o << " of `" << path << "`";
        continue;
      }
      args.insert(args.end(), {o.get<std::string>(), it->second});
    }
    return args;
  }
  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out;
  }

  static TempDir* dir_;
  static std::string db_;
  static ServerProcess* server_;
  static json* table_;
  static int64_t job_id_, build_id_;
};

TempDir* CliTableTest::dir_ = nullptr;
std::string CliTableTest::db_;
ServerProcess* CliTableTest::server_ = nullptr;
json* CliTableTest::table_ = nullptr;
int64_t CliTableTest::job_id_ = 0;
int64_t CliTableTest::build_id_ = 0;

TEST_F(CliTableTest, EveryReadCommandsJsonParsesLocallyAndThroughTheServer) {
  int reads = 0;
  for (const auto& cmd : *table_) {
    const std::string kind = cmd["kind"];
    if (kind != "read" && kind != "stream") continue;
    ++reads;
    for (bool remote : {false, true}) {
      auto args = ArgsFor(cmd);
      args.insert(args.end(), {"--output", "json"});
      if (remote) args.insert(args.end(), {"--server", server_->url()});
      else args.insert(args.end(), {"--local", "--store", db_});
      auto r = RunSallyport(args);
      const std::string what = Join(args);
      ASSERT_EQ(r.exit_code, 0) << what << "\n" << r.out << r.err;
      if (kind == "read") {
        EXPECT_FALSE(json::parse(r.out, nullptr, false).is_discarded()) << what << ": not one JSON document:\n" << r.out;
        continue;
      }
      int lines = 0;
      for (const auto& line : Split(r.out, '\n')) {
        if (line.empty()) continue;
        ++lines;
        EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded()) << what << ": not a JSON line: " << line;
      }
      EXPECT_EQ(lines, 1) << what << ":\n" << r.out;
    }
  }
  EXPECT_GE(reads, 14) << "the table lists fewer read commands than documented";
}

TEST_F(CliTableTest, BadUsageOfEveryCommandExits2AndReservedVerbsExit4) {
  for (const auto& cmd : *table_) {
    auto args = cmd["path"].get<std::vector<std::string>>();
    const std::string path = Join(args);
    auto unknown = args;
    unknown.push_back("--no-such-option");
    EXPECT_EQ(RunSallyport(unknown).exit_code, 2) << path << " --no-such-option";
    if (cmd["kind"] == "reserved") {
      EXPECT_EQ(RunSallyport(args).exit_code, 4) << path;
      continue;
    }
    if (!cmd["positionals"].empty() || !cmd["required"].empty()) {
      auto r = RunSallyport(args);  // A required argument missing.
      EXPECT_EQ(r.exit_code, 2) << path << ": " << r.err;
    }
  }
  EXPECT_EQ(RunSallyport({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(RunSallyport({}).exit_code, 2);
  auto out = RunSallyport({"rollout", "list", "--output", "yaml", "--local", "--store", db_});
  EXPECT_EQ(out.exit_code, 2) << "--output takes text or json";
}

TEST_F(CliTableTest, TheOneExitCodePolicy) {
  // 2: an unknown object; 4: a server that cannot be reached; 3: a conflict.
  EXPECT_EQ(RunSallyport({"rollout", "show", "r-nope", "--local", "--store", db_}).exit_code, 2);
  EXPECT_EQ(RunSallyport({"job", "list", "--server", "http://127.0.0.1:9"}).exit_code, 4);
  ASSERT_EQ(RunSallyport({"job", "cancel", std::to_string(job_id_), "--local", "--store", db_}).exit_code, 0);
  EXPECT_EQ(RunSallyport({"job", "cancel", std::to_string(job_id_), "--local", "--store", db_}).exit_code, 3);
  ASSERT_EQ(RunSallyport({"job", "retry", std::to_string(job_id_), "--local", "--store", db_}).exit_code, 0);
  auto unreachable = RunSallyport({"job", "list", "--server", "http://127.0.0.1:9"});
  EXPECT_THAT(unreachable.err, ::testing::HasSubstr("cannot connect")) << "the cause is said in full";
}

}  // namespace
}  // namespace sp::test
