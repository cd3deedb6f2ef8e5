#include "store/sqlite/store_file.h"

#include <filesystem>

namespace sp {

Result<std::unique_ptr<SqliteStore>> OpenStoreFile(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  return SqliteStore::Open(path);
}

}  // namespace sp
