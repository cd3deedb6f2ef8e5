// sallyport-test: the `sallyport` CLI with the test tree's extensions, for
// the tests that need a control no shipped binary may have. Switched by
// this binary's own environment (the shipped `sallyport` reads none of it):
//   SP_TESTBIN_SKIP_DRAIN_WAIT=1     every load balancer reports zero
//                                    sessions, so a host is stopped while it
//                                    still serves (the negative control of
//                                    the zero-failed-requests tests); the
//                                    sessions it hid are said on stderr
//                                    ("SP_TESTBIN hid N session(s) of S");
//   SP_TESTBIN_HALT_AFTER=host:step[:begin]   an agent (or a rollout run
//                                    by the CLI) stops itself
//                                    (SIGSTOP) once that step of that host
//                                    ended (or, with :begin, was journaled
//                                    and is about to act), so a test can
//                                    kill or pause it at an exact point.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/cli.h"
#include "runner/runner.h"
#include "support/zero_sessions.h"

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "__supervise") return sp::SuperviseMain(argc - 1, argv + 1);
  sp::cli::Extensions ext;
  if (Env("SP_TESTBIN_SKIP_DRAIN_WAIT") == "1") {
    std::fprintf(stderr, "WARNING: SP_TESTBIN_SKIP_DRAIN_WAIT=1 — not waiting for sessions to drain (test binary)\n");
    ext.decorate_lb = [](std::unique_ptr<sp::LoadBalancer> lb) -> std::unique_ptr<sp::LoadBalancer> {
      // Said on stderr, so a test knows the control had sessions to cut.
      return std::make_unique<sp::test::ZeroSessions>(std::move(lb), [](const std::string& server, int n) {
        std::fprintf(stderr, "SP_TESTBIN hid %d session(s) of %s\n", n, server.c_str());
      });
    };
  }
  if (const std::string halt = Env("SP_TESTBIN_HALT_AFTER"); !halt.empty()) {
    ext.observe_event = [halt](const sp::Event& e) {
      if (e.type != sp::EventType::kStep) return;
      const std::string at = e.host + ":" + sp::Name(e.step);
      if ((e.phase == sp::StepPhase::kEnd && at == halt) || (e.phase == sp::StepPhase::kBegin && at + ":begin" == halt)) {
        std::printf("agent: TEST halting after %s\n", halt.c_str());
        std::fflush(stdout);
        ::raise(SIGSTOP);
      }
    };
  }
  return sp::cli::Main(argc, argv, ext);
}
