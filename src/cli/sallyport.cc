// The shipped `sallyport` binary: the CLI with no extensions, and the step
// supervisor it runs pipeline steps under.
#include <string>

#include "cli/cli.h"
#include "runner/runner.h"

int main(int argc, char** argv) {
  // The step supervisor (runner/runner.h): not a user command.
  if (argc > 1 && std::string(argv[1]) == "__supervise") return sp::SuperviseMain(argc - 1, argv + 1);
  return sp::cli::Main(argc, argv, {});
}
