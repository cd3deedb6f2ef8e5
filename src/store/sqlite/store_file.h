// The state database at a path, its directory made first when missing (the
// CLI's and the server's default is .sallyport/state.db).
#pragma once

#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"

namespace sp {

Result<std::unique_ptr<SqliteStore>> OpenStoreFile(const std::string& path);

}  // namespace sp
