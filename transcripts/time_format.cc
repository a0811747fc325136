#include "transcripts/time_format.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace jead::transcript {

namespace {

// Reads exactly `digits` decimal digits at `at` and advances it.
bool read_number(std::string_view text, std::size_t& at, std::size_t digits, int& value)
{
	if (at + digits > text.size())
		return false;
	for (std::size_t i = at; i < at + digits; ++i)
		if (text[i] < '0' || text[i] > '9')
			return false;
	std::from_chars(text.data() + at, text.data() + at + digits, value);
	at += digits;
	return true;
}

bool expect(std::string_view text, std::size_t& at, char c)
{
	if (at >= text.size() || text[at] != c)
		return false;
	++at;
	return true;
}

}  // namespace

std::string utc_now_iso8601()
{
	const auto now = std::chrono::system_clock::now();
	const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
	const std::time_t seconds = static_cast<std::time_t>(ms / 1000);

	std::tm utc{};
	gmtime_r(&seconds, &utc);
	char text[40];
	const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
	char millis[8];
	std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
	return std::string(text, n) + millis;
}

std::optional<std::int64_t> parse_utc_time_ms(std::string_view text)
{
	if (!text.empty() && text.front() == '@') {
		std::int64_t seconds = 0;
		const auto* end = text.data() + text.size();
		const auto [next, error] = std::from_chars(text.data() + 1, end, seconds);
		if (error != std::errc() || next != end || text.size() == 1 || seconds < 0 ||
		    seconds > 253402300799)  // the end of year 9999
			return std::nullopt;
		return seconds * 1000;
	}

	std::tm utc{};
	int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
	std::size_t at = 0;
	if (!read_number(text, at, 4, year) || !expect(text, at, '-') || !read_number(text, at, 2, month) ||
	    !expect(text, at, '-') || !read_number(text, at, 2, day))
		return std::nullopt;
	if (at < text.size() && text[at] == 'T') {
		++at;
		if (!read_number(text, at, 2, hour) || !expect(text, at, ':') || !read_number(text, at, 2, minute))
			return std::nullopt;
		if (at < text.size() && text[at] == ':') {
			++at;
			if (!read_number(text, at, 2, second))
				return std::nullopt;
			if (at < text.size() && text[at] == '.' && (++at, !read_number(text, at, 3, millis)))
				return std::nullopt;
		}
	}
	if (at < text.size() && text[at] == 'Z')
		++at;
	if (at != text.size())
		return std::nullopt;
	if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
		return std::nullopt;

	utc.tm_year = year - 1900;
	utc.tm_mon = month - 1;
	utc.tm_mday = day;
	utc.tm_hour = hour;
	utc.tm_min = minute;
	utc.tm_sec = second;
	const std::time_t seconds = timegm(&utc);
	// timegm() normalises 2024-02-31 to March; reject such dates.
	if (utc.tm_mday != day || utc.tm_mon != month - 1)
		return std::nullopt;
	return static_cast<std::int64_t>(seconds) * 1000 + millis;
}

}  // namespace jead::transcript
