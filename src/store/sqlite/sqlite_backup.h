// An online copy of a state database (`sallyport backup`): SQLite's backup
// API reads one consistent snapshot while the server goes on writing (WAL:
// writers are not blocked by the reader).
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace sp {

struct BackupResult {
  int64_t pages = 0;
  int64_t bytes = 0;
};

// Copies the database at `from` to a new file `to` (mode 0600; written as
// `to`.partial, checked with PRAGMA integrity_check, synced, then renamed):
// kConflict when `to` exists, kNotFound when `from` does not.
Result<BackupResult> BackupStore(const std::string& from, const std::string& to);

}  // namespace sp
