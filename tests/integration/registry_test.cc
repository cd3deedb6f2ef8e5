// The registry client (src/registry) against Debian's docker-registry over
// HTTPS with token auth, its token server started by the test
// (DockerEnvironment): the token flow and its cache, wrong credentials, an
// unknown CA, a foreign realm, a plain-HTTP listener, a credential helper.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/image_ref.h"
#include "registry/registry_client.h"
#include "support/docker_fixture.h"
#include "support/test_ca.h"
#include "support/token_server.h"

namespace sp::test {
namespace {

const char* const kUser = "deployer";
const char* const kPassword = "Reg-Pw-7f3a91-secret";

[[maybe_unused]] ::testing::Environment* const kDockerEnvironment =
    ::testing::AddGlobalTestEnvironment(new DockerEnvironment(kUser, kPassword));

// Two repositories with one image each (different images: a digest names its repository), pushed once per process.
struct Pushed {
  std::string a, b, error;
};
const Pushed& Images() {
  static const Pushed p = [] {
    Pushed out;
    auto* env = DockerEnvironment::Get();
    auto a = BuildAndPushSampleImage(env->docker(), env->registry(), "sp-reg-a:v1", "v1");
    auto b = a ? BuildAndPushSampleImage(env->docker(), env->registry(), "sp-reg-b:v2", "v2") : a;
    if (!a || !b) {
      out.error = (!a ? a : b).error().message;
      return out;
    }
    out.a = *a;
    out.b = *b;
    return out;
  }();
  return p;
}

ImageRef Ref(const std::string& s) {
  auto r = ParseImageRef(s);
  EXPECT_TRUE(r) << s;
  return r ? *r : ImageRef{};
}

class RegistryClientIT : public ::testing::Test {
 protected:
  void SetUp() override {
    SP_REQUIRE_DOCKER_ENVIRONMENT();
    env_ = DockerEnvironment::Get();
    ASSERT_EQ(Images().error, "");
    env_->tokens().Clear();
  }
  RegistryClientOptions Trusting() const {
    RegistryClientOptions o;
    o.trust.certs_dirs = {env_->docker().certs_dir()};
    return o;
  }
  RegistryCredential Cred(const std::string& password = kPassword) const { return {kUser, password, {}}; }

  DockerEnvironment* env_ = nullptr;
};

TEST_F(RegistryClientIT, TokenFlowAsksThePullScopeOnceAndCachesTheTokenPerRepository) {
  RegistryClient client(Trusting());
  const ImageRef a = Ref(Images().a);
  auto digest = client.ManifestDigest(a, Cred());
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_EQ(*digest, a.digest);
  const int64_t first = client.requests();
  // 401 with the challenge, the token, the manifest.
  EXPECT_EQ(first, 3);
  auto asked = env_->tokens().requests();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(asked[0].had_credentials);
  EXPECT_EQ(asked[0].user, kUser);
  EXPECT_EQ(asked[0].service, "sp-test-registry");
  ASSERT_EQ(asked[0].scopes.size(), 1u);
  EXPECT_EQ(asked[0].scopes[0], "repository:sp-reg-a:pull");

  // The same repository again: the cached token, one round trip.
  ASSERT_TRUE(client.ManifestDigest(a, Cred()));
  EXPECT_EQ(client.requests() - first, 1);
  EXPECT_EQ(env_->tokens().requests().size(), 1u);

  // Another repository: its own scope, and the remembered challenge: two.
  const int64_t before_b = client.requests();
  auto b = client.ManifestDigest(Ref(Images().b), Cred());
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(client.requests() - before_b, 2);
  asked = env_->tokens().requests();
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1].scopes, std::vector<std::string>{"repository:sp-reg-b:pull"});
  std::printf("round trips: first repository %lld, same again 1, next repository %lld\n",
              static_cast<long long>(first), static_cast<long long>(client.requests() - before_b));

  // The token is kept until its expires_in (300 s here, less 10 s of margin).
  FakeClock clock;
  RegistryClient timed(Trusting(), clock);
  env_->tokens().Clear();
  ASSERT_TRUE(timed.ManifestDigest(a, Cred()));
  clock.Advance(Millis(289'000));
  ASSERT_TRUE(timed.ManifestDigest(a, Cred()));
  EXPECT_EQ(env_->tokens().requests().size(), 1u) << "asked again before it expired";
  clock.Advance(Millis(2'000));
  ASSERT_TRUE(timed.ManifestDigest(a, Cred()));
  EXPECT_EQ(env_->tokens().requests().size(), 2u) << "an expired token was used";

  // A tag resolves to the digest the registry holds.
  ImageRef tagged = a;
  tagged.digest.clear();
  tagged.tag = "v1";
  auto by_tag = client.ManifestDigest(tagged, Cred());
  ASSERT_TRUE(by_tag) << by_tag.error().message;
  EXPECT_EQ(*by_tag, a.digest);
}

TEST_F(RegistryClientIT, WrongCredentialsFailNamingTheRegistryWithoutThePassword) {
  RegistryClient client(Trusting());
  const std::string wrong = "Wrong-Pw-91c2-must-not-leak";
  auto r = client.ManifestDigest(Ref(Images().a), Cred(wrong));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
  const std::string& msg = r.error().message;
  EXPECT_NE(msg.find("registry " + env_->registry().address() + " rejected the credentials of user 'deployer'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("HTTP 401"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(wrong), std::string::npos);
  // Without credentials: an anonymous token without access, then refused.
  auto anon = client.ManifestDigest(Ref(Images().a), std::nullopt);
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().code, ErrorCode::kPermissionDenied) << anon.error().message;
  // A repository that does not exist is "not found", with the right credentials.
  auto missing = client.ManifestDigest(Ref(env_->registry().address() + "/sp-reg-a:nope"), Cred());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().message;
}

TEST_F(RegistryClientIT, AnUnknownCaFailsClearlyAndSendsNothing) {
  TempDir empty("sp-no-certs");
  RegistryClientOptions o;
  o.trust.certs_dirs = {empty.path()};
  RegistryClient client(o);
  auto r = client.ManifestDigest(Ref(Images().a), Cred());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find(env_->registry().address() + ": its TLS certificate is not trusted"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find(empty.path() + "/" + env_->registry().address() + "/ca.crt"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(env_->tokens().requests().empty()) << "the realm was asked although the registry is not trusted";
}

TEST_F(RegistryClientIT, APlainHttpListenerIsNeverSpokenToInClear) {
  // A registry that only speaks plain HTTP, and records what reaches it.
  httplib::Server plain;
  std::atomic<int> seen{0};
  plain.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
    ++seen;
    res.status = 200;
  });
  const int port = plain.bind_to_any_port("127.0.0.1");
  std::thread t([&] { plain.listen_after_bind(); });
  RegistryClient client(Trusting());
  auto r = client.ManifestDigest(Ref("127.0.0.1:" + std::to_string(port) + "/team/app:v1"), Cred());
  plain.stop();
  t.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().message;
  EXPECT_EQ(seen.load(), 0) << "a request reached the plain-HTTP listener";

  // insecure: true is honoured on loopback, and refused beyond it unless listed.
  auto beyond = client.ManifestDigest(Ref("10.213.9.9:5000/team/app:v1"), Cred(), /*insecure=*/true);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(beyond.error().message.find("plain HTTP (insecure: true) is refused"), std::string::npos)
      << beyond.error().message;
}

TEST_F(RegistryClientIT, AChallengeNamingAForeignRealmSendsItNoCredentials) {
  // A second registry whose challenge names a realm on another host
  // (127.0.0.2, a listener of this test that records what it receives).
  const TlsFiles foreign_tls = SharedCa().Issue("foreign-realm", {}, {"127.0.0.2"});
  TokenServer::Options to;
  to.host = "127.0.0.2";
  to.user = kUser;
  to.password = kPassword;
  auto foreign = TokenServer::Start(SharedCa(), foreign_tls, to);
  ASSERT_TRUE(foreign) << foreign.error().message;
  const TlsFiles& tls = SharedTls();
  auto reg = RegistryFixture::Start(kUser, kPassword, RegistryToken::With((*foreign)->realm(), tls));
  ASSERT_TRUE(reg) << reg.error().message;
  RegistryClientOptions o;
  o.trust.certs_dirs = {env_->docker().certs_dir()};
  ASSERT_TRUE(env_->docker().TrustRegistry((*reg)->address(), tls.ca));
  RegistryClient client(o);
  auto r = client.ManifestDigest(Ref((*reg)->address() + "/team/app:v1"), Cred());
  ASSERT_FALSE(r);
  auto asked = (*foreign)->requests();
  ASSERT_EQ(asked.size(), 1u) << "the foreign realm was not asked at all";
  EXPECT_FALSE(asked[0].had_credentials) << "credentials were sent to a foreign realm";
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << r.error().message;
  EXPECT_NE(r.error().message.find("so it was sent no credentials"), std::string::npos) << r.error().message;
  std::printf("foreign realm: %s\n", r.error().message.c_str());

  // The credential's own list of realm hosts lets it through.
  RegistryCredential allowed = Cred();
  allowed.realm_hosts = {"127.0.0.2"};
  (*foreign)->Clear();
  RegistryClient client2(o);
  auto r2 = client2.ManifestDigest(Ref((*reg)->address() + "/team/app:v1"), allowed);
  asked = (*foreign)->requests();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(asked[0].had_credentials);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::kNotFound) << r2.error().message;  // Authorized; the image is not there.
}

TEST_F(RegistryClientIT, ACredentialHelperSuppliesTheCredentials) {
  TempDir bin("sp-helper");
  const std::string log = bin.path() + "/asked";
  // docker's helper protocol: the server on stdin, {"Username","Secret"} on stdout.
  WriteFile(bin.path() + "/docker-credential-test",
            "#!/bin/sh\n"
            "[ \"$1\" = get ] || exit 2\n"
            "read -r server\n"
            "printf '%s\\n' \"$server\" >>'" + log + "'\n"
            "printf '{\"ServerURL\":\"%s\",\"Username\":\"" + std::string(kUser) + "\",\"Secret\":\"" + kPassword +
                "\"}\\n' \"$server\"\n",
            0755);
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin.path() + ":" + path).c_str(), 1);
  auto cred = CredentialFromHelper("test", env_->registry().address());
  ::setenv("PATH", path.c_str(), 1);
  ASSERT_TRUE(cred) << cred.error().message;
  EXPECT_EQ(cred->username, kUser);
  EXPECT_EQ(ReadFile(log), env_->registry().address() + "\n");
  RegistryClient client(Trusting());
  auto r = client.ManifestDigest(Ref(Images().a), *cred);
  ASSERT_TRUE(r) << r.error().message;

  auto bad = CredentialFromHelper("../evil", "x");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("is not [a-z0-9-]+"), std::string::npos);
  auto missing = CredentialFromHelper("sp-no-such-helper", "x");
  ASSERT_FALSE(missing);
}

}  // namespace
}  // namespace sp::test
