#include "common/duration.h"

#include <climits>
#include <cstdint>
#include <ctime>
#include <string>

namespace jead {

Result<std::chrono::seconds> parse_duration(std::string_view text)
{
	constexpr std::int64_t kMaxSeconds = 10ll * 366 * 24 * 3600;
	const std::string shown = "\"" + std::string(text.substr(0, 64)) + "\"";

	if (text.empty())
		return fail(Errc::invalid, "invalid duration \"\": expected a number with a unit, such as 90s, 15m, 8h or 1d");

	std::int64_t total = 0;
	std::size_t i = 0;
	while (i < text.size()) {
		std::int64_t value = 0;
		const std::size_t digits_start = i;
		while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
			value = value * 10 + (text[i] - '0');
			if (value > kMaxSeconds)
				return fail(Errc::invalid, "invalid duration " + shown + ": longer than ten years");
			++i;
		}
		if (i == digits_start)
			return fail(Errc::invalid, "invalid duration " + shown + ": expected a digit at offset " + std::to_string(i));

		std::int64_t unit = 1;
		if (i < text.size()) {
			switch (text[i]) {
			case 's': unit = 1; break;
			case 'm': unit = 60; break;
			case 'h': unit = 3600; break;
			case 'd': unit = 86400; break;
			case 'w': unit = 7 * 86400; break;
			default:
				return fail(Errc::invalid, "invalid duration " + shown + ": unknown unit '" + std::string(1, text[i]) +
				                               "' (use s, m, h, d or w)");
			}
			++i;
		} else if (digits_start != 0) {
			return fail(Errc::invalid, "invalid duration " + shown + ": the last number has no unit");
		}

		total += value * unit;
		if (total > kMaxSeconds)
			return fail(Errc::invalid, "invalid duration " + shown + ": longer than ten years");
	}
	return std::chrono::seconds(total);
}

std::string format_utc(std::uint64_t seconds)
{
	std::tm tm{};
	const auto time = static_cast<std::time_t>(seconds);
	char text[32];
	if (seconds > static_cast<std::uint64_t>(INT64_MAX) || gmtime_r(&time, &tm) == nullptr ||
	    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return std::to_string(seconds) + " seconds since the epoch";
	return text;
}

}  // namespace jead
