// Wall-clock times in transcripts and on the jea-replay command line: ISO
// 8601 in UTC, as in the header's `time`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jead::transcript {

// Returns the current time as "2024-12-04T20:07:00.123Z".
std::string utc_now_iso8601();

// Parses a UTC time into milliseconds since the epoch. Accepts
// "2024-12-04", "2024-12-04T20:07", "2024-12-04T20:07:00" and
// "2024-12-04T20:07:00.123", each optionally ending in "Z", and "@SECONDS"
// for seconds since the epoch. Returns std::nullopt for anything else,
// including out-of-range fields.
std::optional<std::int64_t> parse_utc_time_ms(std::string_view text);

}  // namespace jead::transcript
