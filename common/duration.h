// Durations as written in jead's config and role files: "90s", "15m",
// "8h", "1d", or a combination such as "1h30m". A bare number is seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace jead {

// Parses a duration; rejects zero-length text, unknown units, overflow and
// values above ten years.
Result<std::chrono::seconds> parse_duration(std::string_view text);

// Formats seconds since the epoch as UTC ISO 8601 ("2020-01-01T00:00:00Z"),
// or as "N seconds since the epoch" when gmtime cannot represent it.
std::string format_utc(std::uint64_t seconds);

}  // namespace jead
