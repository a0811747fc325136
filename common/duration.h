// Durations as written in jead's config and role files: "90s", "15m",
// "8h", "1d", or a combination such as "1h30m". A bare number is seconds.
#pragma once

#include <chrono>
#include <string_view>

#include "common/result.h"

namespace jead {

// Parses a duration; rejects zero-length text, unknown units, overflow and
// values above ten years.
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace jead
