// The human line of a rollout event, as the CLI prints it and as agents and
// the server write it into job and build logs.
#pragma once

#include <string>

#include "rollout/engine.h"

namespace sp {

// "" for events shown only in JSON (a step's begin).
std::string FormatEvent(const Event& e);

}  // namespace sp
