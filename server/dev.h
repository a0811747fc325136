// `jead dev`: a local demo endpoint with a throwaway CA, a host key, a user
// key and certificate, the demo role, and a config, all under one folder.
#pragma once

#include <cstdint>
#include <filesystem>

namespace jead {

// Creates what is missing under `dir`, mints a fresh one-hour user
// certificate, prints the ssh command lines to try, and serves on
// 127.0.0.1:`port` until stopped. Returns the process exit status.
int run_dev(const std::filesystem::path& dir, std::uint16_t port);

}  // namespace jead
