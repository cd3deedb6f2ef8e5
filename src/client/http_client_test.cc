// HttpApiClient against a real loopback server: a refused connection (a
// server restarting) is tried again for retry_refused, and only then reported.
#include "client/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "support/test_util.h"

namespace sp {
namespace {

TEST(HttpApiClientTest, ARefusedConnectionIsTriedAgainUntilTheServerListensWithinRetryRefused) {
  const int port = test::FreePort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  // Nothing listens: without retry_refused the call fails at once.
  auto once = HttpApiClient::Create({url, "t", ""});
  ASSERT_TRUE(once);
  auto refused = (*once)->Call("POST", "/v1/agent/jobs/1/store", "{}");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, ::testing::HasSubstr("cannot connect"));

  httplib::Server server;
  int calls = 0;
  server.Post("/v1/agent/jobs/1/store", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.set_content(R"({"ok":true})", "application/json");
  });
  // The server comes 400 ms later (a restart).
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    server.listen("127.0.0.1", port);
  });
  HttpClientOptions o{url, "t", ""};
  o.retry_refused = Millis(5'000);
  auto patient = HttpApiClient::Create(o);
  ASSERT_TRUE(patient);
  auto answered = (*patient)->Call("POST", "/v1/agent/jobs/1/store", "{}");
  patient->reset();  // Its kept-alive connection would hold the server's stop.
  server.stop();
  later.join();
  ASSERT_TRUE(answered) << answered.error().message;
  EXPECT_EQ(answered->value("ok", false), true);
  EXPECT_EQ(calls, 1) << "a refused request was never sent: it arrives once";
}

}  // namespace
}  // namespace sp
