// The `sallyport` binary's entry: the command table (command.h) parsed and
// run. `extensions` come from the test tree's own binary only.
#pragma once

#include "cli/command.h"

namespace sp::cli {

int Main(int argc, char** argv, const Extensions& extensions);

}  // namespace sp::cli
