// Transitional umbrella: every store interface, each declared with its domain.
#pragma once

#include "build/records.h"
#include "inventory/store.h"
#include "queue/job.h"
#include "rollout/journal.h"
#include "rollout/lock.h"
