#include "config/service_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_util.h"

#include <algorithm>
#include <string>

namespace sp {
namespace {

using ::testing::HasSubstr;

using test::LineOf;

std::string At(const std::string& text, const std::string& needle, int nth = 1) {
  return "sallyport.yml:" + std::to_string(LineOf(text, needle, nth)) + ": ";
}

// Parses `text` expecting failure; returns the message.
std::string ErrorOf(const std::string& text) {
  auto r = ParseServiceConfig(text, "sallyport.yml");
  EXPECT_FALSE(r.has_value()) << "parsed unexpectedly";
  if (r.has_value()) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << r.error().message;
  return r.error().message;
}

const char* kFull = R"(version: 1
service: hello
stack: demo
image:
  repository: 127.0.0.1:5000/hello
  dockerfile: docker/Dockerfile
  context: app
registry:
  address: 127.0.0.1:5000
  username: ci
  password: {file: /etc/sallyport/registry-password}
releases:
  web:
    runtime: docker
    port: 8081
    command: [serve, --verbose]
    env:
      GREETING: hello
      EMPTY: ""
    volumes: ["/dev/log:/dev/log", "/srv/data:/data:ro"]
    health:
      path: /healthz
      expected_status: 204
      interval: 500ms
      timeout: 2s
      retries: 10
    smoke: [/usr/bin/curl, -fsS, "http://127.0.0.1:8081/"]
    stop_timeout: 1m
    strategy:
      batch: 25%
      max_failures: "10%"
      drain_timeout: 45s
      ready_timeout: 5s
      keep_previous: 3
  worker:
    runtime: process
)";

TEST(ServiceConfigTest, ParsesEveryField) {
  auto r = ParseServiceConfig(kFull, "sallyport.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const ServiceConfig& c = *r;
  EXPECT_EQ(c.file, "sallyport.yml");
  EXPECT_EQ(c.service, "hello");
  EXPECT_EQ(c.stack, "demo");
  EXPECT_EQ(c.image_repository, "127.0.0.1:5000/hello");
  EXPECT_EQ(c.image_dockerfile, "docker/Dockerfile");
  EXPECT_EQ(c.image_context, "app");
  EXPECT_EQ(c.registry.address, "127.0.0.1:5000");
  EXPECT_EQ(c.registry.username, "ci");
  EXPECT_EQ(c.registry.password_ref, "file:/etc/sallyport/registry-password");
  ASSERT_EQ(c.releases.size(), 2u);
  const ReleaseSpec& web = c.releases.at("web");
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.runtime, "docker");
  EXPECT_EQ(web.port, 8081);
  EXPECT_EQ(web.command, (std::vector<std::string>{"serve", "--verbose"}));
  EXPECT_EQ(web.env, (std::map<std::string, std::string>{{"GREETING", "hello"}, {"EMPTY", ""}}));
  EXPECT_EQ(web.volumes, (std::vector<std::string>{"/dev/log:/dev/log", "/srv/data:/data:ro"}));
  EXPECT_EQ(web.health.path, "/healthz");
  EXPECT_EQ(web.health.expected_status, 204);
  EXPECT_EQ(web.health.interval, Millis(500));
  EXPECT_EQ(web.health.timeout, Millis(2000));
  EXPECT_EQ(web.health.retries, 10);
  EXPECT_EQ(web.smoke, (std::vector<std::string>{"/usr/bin/curl", "-fsS", "http://127.0.0.1:8081/"}));
  EXPECT_EQ(web.stop_timeout, Millis(60'000));
  EXPECT_EQ(web.strategy.batch.ToString(), "25%");
  EXPECT_EQ(web.strategy.max_failures.ToString(), "10%");
  EXPECT_EQ(web.strategy.drain_timeout, Millis(45'000));
  EXPECT_EQ(web.strategy.ready_timeout, Millis(5'000));
  EXPECT_EQ(web.strategy.keep_previous, 3);
  EXPECT_EQ(c.releases.at("worker").runtime, "process");
}

TEST(ServiceConfigTest, MinimalProcessConfigGetsDefaults) {
  auto r = ParseServiceConfig("version: 1\nservice: hello\nstack: demo\nreleases:\n  web: {runtime: process}\n",
                              "sallyport.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const ReleaseSpec& web = r->releases.at("web");
  const ReleaseSpec defaults;
  EXPECT_EQ(r->image_repository, "");
  EXPECT_EQ(r->registry.address, "");
  EXPECT_EQ(web.port, defaults.port);
  EXPECT_EQ(web.health.path, defaults.health.path);
  EXPECT_EQ(web.health.retries, defaults.health.retries);
  EXPECT_EQ(web.stop_timeout, defaults.stop_timeout);
  EXPECT_EQ(web.strategy.batch.ToString(), "1");
  EXPECT_EQ(web.strategy.max_failures.ToString(), "0");
  EXPECT_EQ(web.strategy.keep_previous, 1);
  EXPECT_TRUE(web.command.empty());
}

TEST(ServiceConfigTest, InvalidDurationNamesFileLineAndFieldPath) {
  std::string text = kFull;
  text.replace(text.find("interval: 500ms"), 15, "interval: soon");
  EXPECT_EQ(ErrorOf(text), At(text, "interval: soon") +
                               "releases.web.health.interval: invalid duration 'soon' (expected e.g. 500ms, 10s, 2m)");
}

TEST(ServiceConfigTest, UnknownKeyListsTheExpectedKeys) {
  const std::string text = "version: 1\nservice: hello\nstack: demo\nreleases:\n  web:\n    runtime: process\n"
                           "    helth: {path: /}\n";
  EXPECT_EQ(ErrorOf(text), At(text, "helth") +
                               "releases.web: unknown key 'helth' (expected one of: runtime, port, command, env, "
                               "volumes, health, smoke, stop_timeout, strategy)");
}

TEST(ServiceConfigTest, UnknownTopLevelKeyIsAnError) {
  const std::string text = "version: 1\nservice: hello\nstack: demo\nrelease: {}\n";
  EXPECT_THAT(ErrorOf(text), HasSubstr(At(text, "release:") + "unknown key 'release' (expected one of: version,"));
}

TEST(ServiceConfigTest, DuplicateKeyNamesBothLines) {
  const std::string text = "version: 1\nservice: hello\nstack: demo\nservice: other\nreleases: {web: {}}\n";
  EXPECT_EQ(ErrorOf(text), "sallyport.yml:4: service: duplicate key 'service' (first on line 2, again on line 4)");
}

TEST(ServiceConfigTest, DuplicateKeyInNestedMappingsNamesBothLines) {
  std::string text = kFull;
  // In health (depth 3).
  text.insert(text.find("      retries: 10"), "      interval: 1s\n");
  EXPECT_EQ(ErrorOf(text), At(text, "interval: 1s") +
                               "releases.web.health.interval: duplicate key 'interval' (first on line " +
                               std::to_string(LineOf(text, "interval: 500ms")) + ", again on line " +
                               std::to_string(LineOf(text, "interval: 1s")) + ")");
  // In an env map.
  text = kFull;
  text.insert(text.find("      EMPTY"), "      GREETING: again\n");
  EXPECT_THAT(ErrorOf(text), HasSubstr(At(text, "GREETING: again") + "releases.web.env.GREETING: duplicate key"));
  // Two releases with the same name.
  text = "version: 1\nservice: a\nstack: b\nreleases:\n  web: {runtime: process}\n  web: {runtime: process}\n";
  EXPECT_EQ(ErrorOf(text), "sallyport.yml:6: releases.web: duplicate key 'web' (first on line 5, again on line 6)");
  // Inside a flow mapping on one line.
  text = "version: 1\nservice: a\nstack: b\nreleases:\n  web: {runtime: process, port: 1, port: 2}\n";
  EXPECT_THAT(ErrorOf(text), HasSubstr("sallyport.yml:5: releases.web.port: duplicate key 'port'"));
}

TEST(ServiceConfigTest, YamlSyntaxErrorReportsOneBasedLine) {
  const std::string text = "version: 1\nservice: hello\nstack: demo\nreleases:\n  web: [unclosed\n";
  // The parser stops past the last line; the error is reported on the last line (5), never on line 6.
  EXPECT_THAT(ErrorOf(text), HasSubstr("sallyport.yml:5: YAML syntax error: end of sequence flow not found"));
  // yaml-cpp marks are 0-based: "stack" on line 3 is yaml-cpp's line 2.
  const std::string bad_indent = "version: 1\nservice: hello\n  stack: demo\n";
  EXPECT_THAT(ErrorOf(bad_indent), HasSubstr("sallyport.yml:3: YAML syntax error: illegal map value"));
}

TEST(ServiceConfigTest, VersionIsRequiredAndMustBeOne) {
  EXPECT_EQ(ErrorOf("service: hello\nstack: demo\nreleases: {web: {}}\n"),
            "sallyport.yml:1: version: missing required field (put 'version: 1' at the top of the file)");
  EXPECT_EQ(ErrorOf("version: 2\nservice: hello\nfuture_key: 1\n"),
            "sallyport.yml:1: version: unsupported version '2' (this Sallyport reads version: 1)");
}

TEST(ServiceConfigTest, MissingRequiredFieldsAreNamed) {
  EXPECT_THAT(ErrorOf("version: 1\nstack: demo\nreleases: {web: {}}\n"),
              HasSubstr("sallyport.yml:1: service: missing required field"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: hello\nreleases: {web: {}}\n"),
              HasSubstr("sallyport.yml:1: stack: missing required field"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: hello\nstack: demo\n"),
              HasSubstr("sallyport.yml:1: releases: missing required field"));
  EXPECT_EQ(ErrorOf("version: 1\nservice: hello\nstack: demo\nreleases: {}\n"),
            "sallyport.yml:4: releases: at least one release is required");
  // A docker release needs the image repository.
  EXPECT_THAT(ErrorOf("version: 1\nservice: hello\nstack: demo\nreleases:\n  web: {port: 80}\n"),
              HasSubstr("sallyport.yml:1: image.repository: missing required field (release 'web' uses runtime: docker)"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nimage: {}\nreleases:\n  web: {port: 80}\n"),
              HasSubstr("sallyport.yml:4: image.repository: missing required field"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nregistry: {username: ci}\nreleases: {web: {runtime: process}}\n"),
              HasSubstr("sallyport.yml:4: registry.address: missing required field"));
}

TEST(ServiceConfigTest, WrongTypesNameTheExpectedType) {
  const std::string head = "version: 1\nservice: a\nstack: b\nreleases:\n  web:\n    runtime: process\n";
  EXPECT_EQ(ErrorOf(head + "    port: [80]\n"),
            "sallyport.yml:7: releases.web.port: expected an integer from 1 to 65535, got a list");
  EXPECT_EQ(ErrorOf(head + "    command: serve --verbose\n"),
            "sallyport.yml:7: releases.web.command: expected a list, got a scalar 'serve --verbose'");
  EXPECT_EQ(ErrorOf(head + "    env: [A=1]\n"), "sallyport.yml:7: releases.web.env: expected a mapping, got a list");
  EXPECT_EQ(ErrorOf(head + "    health:\n      path:\n"),
            "sallyport.yml:8: releases.web.health.path: expected a string, got null (no value; write \"\" for an "
            "empty string)");
  EXPECT_EQ(ErrorOf(head + "    command: [serve, {a: b}]\n"),
            "sallyport.yml:7: releases.web.command[1]: expected a string, got a mapping");
  EXPECT_EQ(ErrorOf("version: 1\nservice: [a]\n"), "sallyport.yml:2: service: expected a string, got a list");
  EXPECT_EQ(ErrorOf("- version: 1\n"), "sallyport.yml:1: expected a mapping at the top of the file, got a list");
}

TEST(ServiceConfigTest, LiteralPasswordIsRejected) {
  const std::string text =
      "version: 1\nservice: a\nstack: b\nregistry:\n  address: 127.0.0.1:5000\n  username: ci\n"
      "  password: hunter2\nreleases: {web: {runtime: process}}\n";
  const std::string msg = ErrorOf(text);
  EXPECT_THAT(msg, HasSubstr("sallyport.yml:7: registry.password: a literal password is not allowed"));
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << "the secret must not be echoed: " << msg;
}

TEST(ServiceConfigTest, AnEnvValueMayNameACredentialButNeverHoldAFileOrEnvReferenceInACommit) {
  const std::string head = "version: 1\nservice: a\nstack: b\nreleases:\n  web:\n    runtime: process\n    env:\n";
  auto ok = ParseServiceConfig(head + "      GREETING: hi\n      DATABASE_URL: {credential: db-url}\n", "sallyport.yml");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  const ReleaseSpec& web = ok->releases.at("web");
  EXPECT_EQ(web.env, (std::map<std::string, std::string>{{"GREETING", "hi"}}));
  EXPECT_EQ(web.env_refs, (std::map<std::string, std::string>{{"DATABASE_URL", "credential:db-url"}}));
  EXPECT_TRUE(CheckCommitSecrets(*ok));
  auto local = ParseServiceConfig(head + "      TOKEN: {file: /etc/agent.token}\n", "sallyport.yml");
  ASSERT_TRUE(local.has_value()) << local.error().message;
  auto refused = CheckCommitSecrets(*local);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("releases.web.env.TOKEN: {file} is for local runs only"));
  EXPECT_THAT(ErrorOf(head + "      X: {credential: \"a b\"}\n"),
              HasSubstr("sallyport.yml:8: releases.web.env.X.credential: invalid credential name 'a b'"));
  EXPECT_THAT(ErrorOf(head + "      X: {vault: x}\n"), HasSubstr("sallyport.yml:8: releases.web.env.X: unknown key 'vault'"));
  EXPECT_THAT(ErrorOf(head + "      1X: {credential: c}\n"), HasSubstr("invalid environment variable name '1X'"));
}

TEST(ServiceConfigTest, PasswordReferenceByFileOrEnv) {
  const std::string head = "version: 1\nservice: a\nstack: b\nreleases: {web: {runtime: process}}\nregistry:\n"
                           "  address: registry.example.com\n  username: ci\n";
  auto env = ParseServiceConfig(head + "  password: {env: REGISTRY_PASSWORD}\n", "sallyport.yml");
  ASSERT_TRUE(env.has_value()) << env.error().message;
  EXPECT_EQ(env->registry.password_ref, "env:REGISTRY_PASSWORD");
  EXPECT_THAT(ErrorOf(head + "  password: {env: A, file: /x}\n"),
              HasSubstr("sallyport.yml:8: registry.password: set exactly one of 'credential'"));
  auto named = ParseServiceConfig(head + "  password: {credential: hub-push}\n", "sallyport.yml");
  ASSERT_TRUE(named.has_value()) << named.error().message;
  EXPECT_EQ(named->registry.password_ref, "credential:hub-push");
  EXPECT_TRUE(CheckCommitSecrets(*named));
  EXPECT_THAT(ErrorOf(head + "  password: {credential: \"a b\"}\n"),
              HasSubstr("sallyport.yml:8: registry.password.credential: invalid credential name 'a b'"));
  // A commit's file may name only credentials: {env} and {file} would let it
  // choose what the agent reads and sends.
  auto refused = CheckCommitSecrets(*env);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(refused.error().message, HasSubstr("registry.password: {env} is for local runs only"));
  EXPECT_THAT(ErrorOf(head + "  password: {file: relative/path}\n"),
              HasSubstr("sallyport.yml:8: registry.password.file: expected an absolute path"));
  EXPECT_THAT(ErrorOf(head + "  password: {vault: x}\n"),
              HasSubstr("sallyport.yml:8: registry.password: unknown key 'vault' (expected one of: credential, file, env, "
                        "helper)"));
  // A docker credential helper: local runs only too, a name of [a-z0-9-].
  auto helper = ParseServiceConfig(head + "  password: {helper: ecr-login}\n", "sallyport.yml");
  ASSERT_TRUE(helper.has_value()) << helper.error().message;
  EXPECT_EQ(helper->registry.password_ref, "helper:ecr-login");
  EXPECT_TRUE(IsValidSecretRef(helper->registry.password_ref));
  EXPECT_FALSE(CheckCommitSecrets(*helper));
  EXPECT_THAT(ErrorOf(head + "  password: {helper: ../x}\n"),
              HasSubstr("sallyport.yml:8: registry.password.helper: invalid credential helper name '../x'"));
  EXPECT_FALSE(IsValidSecretRef("helper:Evil"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nreleases: {web: {runtime: process, env: {A: {helper: x}}}}\n"),
              HasSubstr("a credential helper gives registry credentials only"));
  // insecure: a boolean, false unless set.
  EXPECT_FALSE(named->registry.insecure);
  auto insecure = ParseServiceConfig(head + "  password: {credential: c}\n  insecure: true\n", "sallyport.yml");
  ASSERT_TRUE(insecure.has_value()) << insecure.error().message;
  EXPECT_TRUE(insecure->registry.insecure);
  EXPECT_THAT(ErrorOf(head + "  password: {credential: c}\n  insecure: maybe\n"), HasSubstr("registry.insecure"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nreleases: {web: {runtime: process}}\nregistry:\n"
                      "  address: r:5000\n  username: ci\n"),
              HasSubstr("sallyport.yml:5: registry.password: missing required field (username is set)"));
}

TEST(ServiceConfigTest, InvalidNamesAreRejected) {
  EXPECT_THAT(ErrorOf("version: 1\nservice: My_App\nstack: b\nreleases: {web: {}}\n"),
              HasSubstr("sallyport.yml:2: service: invalid name 'My_App'"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nreleases:\n  Web: {runtime: process}\n"),
              HasSubstr("sallyport.yml:5: releases.Web: invalid name 'Web'"));
}

TEST(ServiceConfigTest, EnvNamesAndValuesAreValidated) {
  const std::string head = "version: 1\nservice: a\nstack: b\nreleases:\n  web:\n    runtime: process\n    env:\n";
  EXPECT_THAT(ErrorOf(head + "      BAD-NAME: x\n"),
              HasSubstr("sallyport.yml:8: releases.web.env.BAD-NAME: invalid environment variable name 'BAD-NAME'"));
  EXPECT_EQ(ErrorOf(head + "      MULTI: \"line1\\nline2\"\n"),
            "sallyport.yml:8: releases.web.env.MULTI: must be a single line (no newline or NUL character)");
  EXPECT_EQ(ErrorOf(head + "      BLOCK: |\n        a\n        b\n"),
            "sallyport.yml:8: releases.web.env.BLOCK: must be a single line (no newline or NUL character)");
}

TEST(ServiceConfigTest, PortsHealthVolumesAndStrategyAreValidated) {
  const std::string head = "version: 1\nservice: a\nstack: b\nimage: {repository: r/a}\nreleases:\n  web:\n";
  EXPECT_EQ(ErrorOf(head + "    port: 70000\n"),
            "sallyport.yml:7: releases.web.port: expected an integer from 1 to 65535, got '70000'");
  EXPECT_EQ(ErrorOf(head + "    port: 0\n"),
            "sallyport.yml:7: releases.web.port: expected an integer from 1 to 65535, got '0'");
  EXPECT_EQ(ErrorOf(head + "    health: {path: health}\n"),
            "sallyport.yml:7: releases.web.health.path: expected a URL path starting with '/', got 'health'");
  EXPECT_THAT(ErrorOf(head + "    health: {expected_status: 99}\n"),
              HasSubstr("sallyport.yml:7: releases.web.health.expected_status: expected an integer from 100 to 599"));
  EXPECT_THAT(ErrorOf(head + "    volumes: [\"data:/data\"]\n"),
              HasSubstr("sallyport.yml:7: releases.web.volumes[0]: invalid volume 'data:/data'"));
  EXPECT_THAT(ErrorOf(head + "    volumes:\n      - /a:/b\n      - /a:/b:rx\n"),
              HasSubstr("sallyport.yml:9: releases.web.volumes[1]: invalid volume '/a:/b:rx'"));
  EXPECT_THAT(ErrorOf(head + "    runtime: process\n    volumes: [/a:/b]\n"),
              HasSubstr("sallyport.yml:8: releases.web.volumes: volumes need runtime: docker"));
  EXPECT_EQ(ErrorOf(head + "    runtime: vm\n"),
            "sallyport.yml:7: releases.web.runtime: expected 'docker' or 'process', got 'vm'");
  EXPECT_EQ(ErrorOf(head + "    strategy: {batch: 0}\n"),
            "sallyport.yml:7: releases.web.strategy.batch: batch must be at least 1 (or 1%)");
  EXPECT_THAT(ErrorOf(head + "    strategy: {max_failures: lots}\n"),
              HasSubstr("sallyport.yml:7: releases.web.strategy.max_failures: invalid count 'lots'"));
  EXPECT_EQ(ErrorOf(head + "    strategy: {keep_previous: 0}\n"),
            "sallyport.yml:7: releases.web.strategy.keep_previous: expected an integer from 1 to 20, got '0'");
  EXPECT_EQ(ErrorOf(head + "    strategy: {keep_previous: 21}\n"),
            "sallyport.yml:7: releases.web.strategy.keep_previous: expected an integer from 1 to 20, got '21'");
  EXPECT_THAT(ErrorOf(head + "    stop_timeout: 5 minutes\n"),
              HasSubstr("sallyport.yml:7: releases.web.stop_timeout: invalid duration unit"));
}

TEST(ServiceConfigTest, ImageRepositoryMustNotCarryATag) {
  const std::string tail = "\nreleases: {web: {}}\n";
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nimage: {repository: \"127.0.0.1:5000/hello:v1\"}" + tail),
              HasSubstr("sallyport.yml:4: image.repository: '127.0.0.1:5000/hello:v1' has a tag or digest"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nimage: {repository: \"Bad Name\"}" + tail),
              HasSubstr("sallyport.yml:4: image.repository: invalid image repository 'Bad Name'"));
  EXPECT_THAT(ErrorOf("version: 1\nservice: a\nstack: b\nimage: {repository: r/a, dockerfile: ../Dockerfile}" + tail),
              HasSubstr("sallyport.yml:4: image.dockerfile: expected a path relative to the repository root"));
}

TEST(ServiceConfigTest, EmptyFileAndSeveralDocumentsAreRejected) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("sallyport.yml:1: the file is empty"));
  EXPECT_THAT(ErrorOf("# only a comment\n"), HasSubstr("sallyport.yml:1: the file is empty"));
  EXPECT_THAT(ErrorOf("version: 1\n---\nversion: 1\n"),
              HasSubstr("sallyport.yml:3: only one YAML document is allowed per file"));
}

TEST(ServiceConfigTest, AnchorsAndAliasesAreFollowed) {
  auto r = ParseServiceConfig(
      "version: 1\nservice: a\nstack: b\nreleases:\n  web: &base {runtime: process, port: 9000}\n  api: *base\n",
      "sallyport.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->releases.at("api").port, 9000);
  EXPECT_EQ(r->releases.at("api").name, "api");
}

TEST(ServiceConfigTest, LoadReportsAMissingFileAsNotFound) {
  auto r = LoadServiceConfig("/nonexistent/sallyport.yml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("/nonexistent/sallyport.yml"));
}

const char* kPipeline = R"(version: 1
service: hello
stack: demo
image: {repository: 127.0.0.1:5000/hello}
releases:
  web: {runtime: docker}
pipeline:
  - name: unit-tests
    run: [make, test]
    env: {CI: "1"}
    timeout: 5m
  - name: lint
    run: [make, lint]
    when: [integration]
    secrets: [LINT_TOKEN]
  - {name: image, kind: image}
  - {name: push, kind: push}
  - {name: deploy, kind: deploy}
branches:
  - {match: main}
  - {match: "remote-run/{user}/*", deploy: "personal-{user}"}
)";

TEST(ServiceConfigTest, PipelineAndBranchRulesAreParsed) {
  auto cfg = ParseServiceConfig(kPipeline, "sallyport.yml");
  ASSERT_TRUE(cfg) << cfg.error().message;
  ASSERT_EQ(cfg->pipeline.size(), 5u);
  EXPECT_EQ(cfg->pipeline[0].kind, "command");
  EXPECT_EQ(cfg->pipeline[0].run, (std::vector<std::string>{"make", "test"}));
  EXPECT_EQ(cfg->pipeline[0].env.at("CI"), "1");
  EXPECT_EQ(cfg->pipeline[0].timeout, Millis(300'000));
  EXPECT_EQ(cfg->pipeline[1].when, (std::vector<std::string>{"integration"}));
  EXPECT_EQ(cfg->pipeline[1].secrets, (std::vector<std::string>{"LINT_TOKEN"}));
  EXPECT_EQ(cfg->pipeline[4].kind, "deploy");
  EXPECT_EQ(cfg->pipeline[4].release, "web") << "the only release";
  ASSERT_EQ(cfg->branches.size(), 2u);
  EXPECT_EQ(cfg->branches[0].match, "main");
  EXPECT_EQ(cfg->branches[0].deploy, "") << "build only";

  auto defaults = ParseServiceConfig(R"(version: 1
service: hello
stack: demo
releases: {web: {runtime: process}}
)", "sallyport.yml");
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_TRUE(defaults->pipeline.empty());
  ASSERT_EQ(defaults->branches.size(), 2u);
  EXPECT_EQ(defaults->branches[1].deploy, "personal-{user}");
}

TEST(ServiceConfigTest, PipelineErrorsNameLineAndField) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string t = kPipeline;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  const std::string kind = with("{name: push, kind: push}", "{name: push, kind: publish}");
  EXPECT_EQ(ErrorOf(kind), At(kind, "kind: publish") + "pipeline[3].kind: unknown step kind 'publish' (expected "
                                                          "command, image, push or deploy)");
  const std::string twice = with("name: lint", "name: unit-tests");
  EXPECT_THAT(ErrorOf(twice), HasSubstr("step 'unit-tests' twice"));
  const std::string no_run = with("    run: [make, lint]\n", "");
  EXPECT_THAT(ErrorOf(no_run), HasSubstr("pipeline[1].run: missing required field"));
  const std::string shell = with("run: [make, test]", "run: make test");
  EXPECT_THAT(ErrorOf(shell), HasSubstr("pipeline[0].run: expected a list"));
  const std::string pattern = with("when: [integration]", "when: [\"a b\"]");
  EXPECT_THAT(ErrorOf(pattern), HasSubstr("invalid branch pattern 'a b'"));
  const std::string user = with("{match: main}", "{match: main, deploy: \"personal-{user}\"}");
  EXPECT_THAT(ErrorOf(user), HasSubstr("{user} in deploy needs {user} in match"));
  const std::string rel = with("{name: deploy, kind: deploy}", "{name: deploy, kind: deploy, release: api}");
  EXPECT_THAT(ErrorOf(rel), HasSubstr("no release 'api' in this file"));
  const std::string secret = with("secrets: [LINT_TOKEN]", "secrets: [\"bad name\"]");
  EXPECT_THAT(ErrorOf(secret), HasSubstr("not a valid environment variable name"));
}

}  // namespace
}  // namespace sp
