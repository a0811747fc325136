// Logging through spdlog to stderr, which the service manager sends to the
// journal. Levels: error = a refusal with its reason or an internal fault;
// warning = a limit hit, a dropped connection, a break-glass event; info =
// accepted logins, session start and end, each decision; debug = parse and
// protocol detail. Peer-supplied strings are escaped before they reach a
// message, so one event is always one line.
#pragma once

#include <string_view>

namespace jead {

// `format` is "text" (TIME LEVEL message) or "json" (one JSON object per
// line with the keys time, level and message).
void setup_logging(std::string_view level, std::string_view format = "text");

}  // namespace jead
