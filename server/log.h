// Logging through spdlog to stderr, which the service manager sends to the
// journal. Levels: error = a refusal with its reason or an internal fault;
// warn = a limit hit or a degraded state; info = accepted logins, session
// start and end, each decision; debug = parse and protocol detail.
#pragma once

#include <string_view>

namespace jead {

void setup_logging(std::string_view level);

}  // namespace jead
