#include "roles/arguments.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include <re2/re2.h>

#include "common/duration.h"
#include "common/escape.h"
#include "roles/limits.h"

namespace jead {

namespace {

constexpr std::size_t kShownValueBytes = 128;

// Quotes and escapes a client value for an error message, cut at
// kShownValueBytes.
std::string quote_value(std::string_view value)
{
	return escape_untrusted(value, kShownValueBytes);
}

// Builds `argument "NAME": "VALUE" RULE`.
tl::unexpected<Error> reject(Errc code, const ArgSpec& spec, std::string_view value, std::string_view rule)
{
	return fail(code, "argument \"" + spec.name + "\": " + quote_value(value) + " " + std::string(rule));
}

tl::unexpected<Error> reject(const ArgSpec& spec, std::string_view value, std::string_view rule)
{
	return reject(Errc::invalid, spec, value, rule);
}

bool has_control_byte(std::string_view value)
{
	for (const char c : value) {
		const auto b = static_cast<unsigned char>(c);
		if (b < 0x20 || b == 0x7F)
			return true;
	}
	return false;
}

bool is_ascii_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool all_digits(std::string_view text)
{
	for (const char c : text)
		if (!is_ascii_digit(c))
			return false;
	return !text.empty();
}

std::string join(const std::vector<std::string>& items)
{
	std::string out;
	for (const auto& item : items) {
		if (!out.empty())
			out += ", ";
		out += item;
	}
	return out;
}

// Checks shared by every positional type: no control bytes, and no leading
// '-' that the program could read as an option.
Result<void> check_positional(const ArgSpec& spec, std::string_view value, bool allow_leading_dash)
{
	if (has_control_byte(value))
		return reject(spec, value, "contains a control character");
	if (!allow_leading_dash && !value.empty() && value.front() == '-')
		return reject(spec, value, "starts with \"-\" and could be read as an option");
	return {};
}

}  // namespace

std::string_view arg_type_name(ArgType type)
{
	switch (type) {
	case ArgType::enum_: return "enum";
	case ArgType::int_: return "int";
	case ArgType::string: return "string";
	case ArgType::path: return "path";
	case ArgType::hostname: return "hostname";
	case ArgType::ip: return "ip";
	case ArgType::cidr: return "cidr";
	case ArgType::duration: return "duration";
	case ArgType::size: return "size";
	case ArgType::flag: return "flag";
	}
	return "unknown";
}

Result<std::string> validate_enum(const ArgSpec& spec, std::string_view value)
{
	for (const auto& allowed : spec.values)
		if (value == allowed)
			return allowed;
	return reject(spec, value, "is not one of: " + join(spec.values));
}

Result<std::string> validate_int(const ArgSpec& spec, std::string_view value)
{
	// Built only for a rejection: allowed values are the common case.
	const auto range = [&spec] { return "range " + std::to_string(spec.min) + ".." + std::to_string(spec.max); };
	if (value.empty())
		return reject(spec, value, "is empty, expected a decimal integer in " + range());

	const bool negative = value.front() == '-';
	const std::string_view digits = negative ? value.substr(1) : value;
	if (!all_digits(digits))
		return reject(spec, value, "is not a decimal integer (digits 0-9 only, in " + range() + ")");
	if (digits.size() > 1 && digits.front() == '0')
		return reject(spec, value, "has a leading zero");
	if (negative && digits == "0")
		return reject(spec, value, "is not canonical, write 0");
	if (negative && spec.min >= 0)
		return reject(spec, value, "is negative, expected " + range());

	// Accumulate the magnitude in 64 unsigned bits; INT64_MIN's magnitude
	// is one more than INT64_MAX's.
	const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : std::uint64_t{INT64_MAX};
	std::uint64_t magnitude = 0;
	for (const char c : digits) {
		const auto digit = static_cast<std::uint64_t>(c - '0');
		if (magnitude > (limit - digit) / 10)
			return reject(spec, value, "is out of " + range());
		magnitude = magnitude * 10 + digit;
	}

	const std::int64_t number = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
	if (number < spec.min || number > spec.max)
		return reject(spec, value, "is out of " + range());
	return std::to_string(number);
}

Result<std::shared_ptr<const re2::RE2>> compile_pattern(const std::string& pattern)
{
	if (pattern.empty())
		return fail(Errc::invalid, "pattern is empty");
	if (pattern.size() > limits::kMaxPatternBytes)
		return fail(Errc::limit, "pattern is " + std::to_string(pattern.size()) + " bytes, longer than the maximum of " +
		                             std::to_string(limits::kMaxPatternBytes));

	re2::RE2::Options options;
	options.set_log_errors(false);   // RE2 would print to stderr; the load error carries the message
	options.set_never_capture(true);  // groups only group: nothing reads submatches
	options.set_max_mem(limits::kMaxPatternMemoryBytes);
	auto compiled = std::make_shared<const re2::RE2>(pattern, options);
	if (!compiled->ok())
		return fail(Errc::invalid, "pattern " + quote_value(pattern) + " is not a valid regular expression: " + compiled->error());
	return compiled;
}

Result<std::string> validate_string(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, spec.allow_leading_dash); !ok)
		return tl::unexpected(ok.error());
	if (!is_valid_utf8(value))
		return reject(spec, value, "is not valid UTF-8");
	if (value.size() > spec.max_length)
		return reject(spec, value,
		              "is " + std::to_string(value.size()) + " bytes, longer than the maximum of " +
		                  std::to_string(spec.max_length));
	if (!spec.compiled_pattern)
		return fail(Errc::internal, "argument \"" + spec.name + "\": no compiled pattern (role not loaded by load_role_file)");

	// RE2 matches in time linear in the value's length.
	if (!re2::RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *spec.compiled_pattern))
		return reject(spec, value, "does not match the pattern " + quote_value(spec.pattern));
	return std::string(value);
}

Result<std::string> normalize_absolute_path(std::string_view path)
{
	if (path.empty())
		return fail(Errc::invalid, "is empty, expected an absolute path");
	if (has_control_byte(path))
		return fail(Errc::invalid, "contains a control character");
	if (path.front() != '/')
		return fail(Errc::invalid, "is not an absolute path (it must start with \"/\")");
	if (path.size() > limits::kMaxPathBytes)
		return fail(Errc::limit, "is longer than the maximum of " + std::to_string(limits::kMaxPathBytes) + " bytes");

	std::string normalized;
	std::size_t components = 0;
	std::size_t start = 0;
	// Each iteration consumes at least one byte of `path`.
	while (start < path.size()) {
		std::size_t end = path.find('/', start);
		if (end == std::string_view::npos)
			end = path.size();
		const std::string_view component = path.substr(start, end - start);
		start = end + 1;

		if (component.empty() || component == ".")
			continue;
		if (component == "..")
			return fail(Errc::invalid, "contains a \"..\" component");
		if (++components > limits::kMaxPathComponents)
			return fail(Errc::limit, "has more than " + std::to_string(limits::kMaxPathComponents) + " components");
		normalized += '/';
		normalized += component;
	}
	if (normalized.empty())
		normalized = "/";
	return normalized;
}

bool path_within(std::string_view path, std::string_view prefix)
{
	if (prefix == "/")
		return !path.empty() && path.front() == '/';
	if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix)
		return false;
	return path.size() == prefix.size() || path[prefix.size()] == '/';
}

namespace {

// Outcome of resolving symbolic links in a path.
struct ResolvedPath {
	std::string path;
	bool exists = false;
};

Result<std::string> real_path(const std::string& path)
{
	char buffer[PATH_MAX];
	if (::realpath(path.c_str(), buffer) == nullptr)
		return fail(Errc::io, std::strerror(errno));
	return std::string(buffer);
}

// Resolves every symbolic link in the normalised absolute `path`, like
// realpath(3). For a path that does not exist, it resolves the longest
// existing ancestor and appends the missing components. A missing component
// that is itself a dangling symbolic link is an error, because a program
// writing to it would follow the link.
Result<ResolvedPath> resolve_links(const std::string& path)
{
	errno = 0;
	if (auto resolved = real_path(path))
		return ResolvedPath{*resolved, true};
	if (errno != ENOENT)
		return fail(Errc::io, std::string("could not be resolved: ") + std::strerror(errno));

	// Walk up one component at a time; the path has at most
	// kMaxPathComponents components, so the loop is bounded.
	std::string ancestor = path;
	std::string missing;
	for (std::size_t step = 0; step <= limits::kMaxPathComponents; ++step) {
		const std::size_t slash = ancestor.rfind('/');
		const std::string component = ancestor.substr(slash + 1);
		ancestor = slash == 0 ? "/" : ancestor.substr(0, slash);
		missing = missing.empty() ? component : component + "/" + missing;

		errno = 0;
		auto resolved = real_path(ancestor);
		if (!resolved) {
			if (errno != ENOENT)
				return fail(Errc::io, std::string("could not be resolved: ") + std::strerror(errno));
			continue;
		}

		const std::string first_missing = missing.substr(0, missing.find('/'));
		const std::string probe = (*resolved == "/" ? "" : *resolved) + "/" + first_missing;
		struct stat info {};
		if (::lstat(probe.c_str(), &info) == 0)
			return fail(Errc::invalid, "leads through a dangling symbolic link");
		return ResolvedPath{(*resolved == "/" ? "" : *resolved) + "/" + missing, false};
	}
	return fail(Errc::internal, "could not be resolved: no existing ancestor");
}

std::string resolved_prefix(const std::string& prefix)
{
	auto resolved = real_path(prefix);
	return resolved ? *resolved : prefix;
}

}  // namespace

// The path is checked here and opened later, by the verb's program, or with
// bind = "descriptor" by jead in the verb's process (see
// path_descriptor_target). Only the second binds the check to the file the
// program reads; roles/README.md explains when the name alone is safe.
Result<std::string> validate_path(const ArgSpec& spec, std::string_view value)
{
	auto normalized = normalize_absolute_path(value);
	if (!normalized)
		return reject(normalized.error().code, spec, value, normalized.error().message);

	bool inside = false;
	for (const auto& prefix : spec.prefixes)
		inside = inside || path_within(*normalized, prefix);
	if (!inside)
		return reject(Errc::denied, spec, value, "is not under any of: " + join(spec.prefixes));

	auto resolved = resolve_links(*normalized);
	if (!resolved)
		return reject(resolved.error().code, spec, value, resolved.error().message);
	if (spec.must_exist && !resolved->exists)
		return reject(Errc::not_found, spec, value, "does not exist");

	bool resolved_inside = false;
	bool link_free = false;
	for (const auto& prefix : spec.prefixes) {
		const std::string real_prefix = resolved_prefix(prefix);
		resolved_inside = resolved_inside || path_within(resolved->path, real_prefix);
		// Without links below the prefix, the resolved path is the
		// resolved prefix followed by the rest of the typed path.
		if (path_within(*normalized, prefix)) {
			const std::string rest = normalized->substr(prefix == "/" ? 0 : prefix.size());
			link_free = link_free || resolved->path == (real_prefix == "/" ? "" : real_prefix) + rest;
		}
	}
	if (!resolved_inside)
		return reject(Errc::denied, spec, value,
		              "resolves to " + quote_value(resolved->path) + ", which is not under any of: " + join(spec.prefixes));
	if (!spec.follow_symlinks && !link_free)
		return reject(Errc::denied, spec, value,
		              "leads through a symbolic link (to " + quote_value(resolved->path) +
		                  "), and this argument does not follow links");

	if (resolved->exists && spec.path_kind != PathKind::any) {
		struct stat info {};
		if (::stat(resolved->path.c_str(), &info) != 0)
			return reject(Errc::io, spec, value, std::string("could not be checked: ") + std::strerror(errno));
		if (spec.path_kind == PathKind::file && !S_ISREG(info.st_mode))
			return reject(spec, value, "is not a regular file");
		if (spec.path_kind == PathKind::dir && !S_ISDIR(info.st_mode))
			return reject(spec, value, "is not a directory");
	}
	return resolved->path;
}

namespace {

bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_ascii_digit(c) || c == '-';
}

char to_lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Returns the canonical text of an IPv4 or IPv6 address, or nothing.
std::optional<std::string> canonical_ip(std::string_view text)
{
	// inet_pton() needs a NUL-terminated string; no address text is longer
	// than INET6_ADDRSTRLEN - 1 bytes.
	char terminated[INET6_ADDRSTRLEN];
	if (text.size() >= sizeof terminated)
		return std::nullopt;
	std::memcpy(terminated, text.data(), text.size());
	terminated[text.size()] = '\0';

	unsigned char address[16];
	char out[INET6_ADDRSTRLEN];
	if (::inet_pton(AF_INET, terminated, address) == 1)
		return std::string(::inet_ntop(AF_INET, address, out, sizeof out));
	if (::inet_pton(AF_INET6, terminated, address) == 1)
		return std::string(::inet_ntop(AF_INET6, address, out, sizeof out));
	return std::nullopt;
}

// Checks one RFC 1123 label; returns the rule it breaks, or an empty string.
std::string check_label(const ArgSpec& spec, std::string_view label)
{
	if (label.empty())
		return "has an empty label";
	if (label.size() > limits::kMaxHostnameLabelBytes)
		return "has a label of " + std::to_string(label.size()) + " characters, longer than the maximum of " +
		       std::to_string(limits::kMaxHostnameLabelBytes);
	for (const char c : label)
		if (!is_ldh(c))
			return "contains a character other than letters, digits, \"-\" and \".\"";
	if (label.front() == '-' || label.back() == '-')
		return "has a label that starts or ends with \"-\"";

	// Labels with "--" in the third and fourth position are reserved for
	// IDNA (RFC 5891 section 4.2.3.1); only "xn--" is a valid one.
	if (label.size() >= 4 && label[2] == '-' && label[3] == '-') {
		const bool punycode = to_lower_ascii(label[0]) == 'x' && to_lower_ascii(label[1]) == 'n';
		if (!punycode)
			return "has a label with the reserved \"--\" in the third and fourth position";
		if (!spec.allow_idn)
			return "has an internationalized (xn--) label, which this argument does not allow";
	}
	return {};
}

}  // namespace

Result<std::string> validate_hostname(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, false); !ok)
		return tl::unexpected(ok.error());
	if (value.empty())
		return reject(spec, value, "is empty, expected a host name");

	if (auto ip = canonical_ip(value)) {
		if (!spec.allow_ip)
			return reject(spec, value, "is an IP address, expected a host name");
		return *ip;
	}

	std::string_view name = value;
	if (name.back() == '.') {
		if (!spec.allow_trailing_dot)
			return reject(spec, value, "ends with \".\"");
		name.remove_suffix(1);
	}
	if (name.size() > limits::kMaxHostnameBytes)
		return reject(spec, value,
		              "is " + std::to_string(name.size()) + " characters, longer than the maximum of " +
		                  std::to_string(limits::kMaxHostnameBytes));

	std::string_view last_label;
	std::size_t start = 0;
	// Each iteration consumes one label and its dot; the name is at most
	// kMaxHostnameBytes long.
	while (true) {
		const std::size_t dot = name.find('.', start);
		const std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
		if (const std::string rule = check_label(spec, label); !rule.empty())
			return reject(spec, value, rule);
		last_label = label;
		if (dot == std::string_view::npos)
			break;
		start = dot + 1;
	}

	// A numeric top-level label makes text like "127.1" or "10.1.2" that
	// resolvers read as an IPv4 address.
	if (all_digits(last_label))
		return reject(spec, value, "ends in an all-numeric label and would be read as an IP address");

	std::string canonical;
	canonical.reserve(value.size());
	for (const char c : value)
		canonical += to_lower_ascii(c);
	return canonical;
}

Result<std::string> validate_ip(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, false); !ok)
		return tl::unexpected(ok.error());
	if (value.size() > INET6_ADDRSTRLEN)
		return reject(spec, value, "is too long for an IP address");
	if (auto ip = canonical_ip(value))
		return *ip;
	return reject(spec, value, "is not an IPv4 or IPv6 address");
}

Result<std::string> validate_cidr(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, false); !ok)
		return tl::unexpected(ok.error());
	const std::size_t slash = value.find('/');
	if (slash == std::string_view::npos)
		return reject(spec, value, "is not in CIDR notation ADDRESS/PREFIX-LENGTH");
	if (slash > INET6_ADDRSTRLEN)
		return reject(spec, value, "is too long for a CIDR block");

	const std::string address_text(value.substr(0, slash));
	const std::string_view length_text = value.substr(slash + 1);

	unsigned char address[16] = {};
	int family = AF_INET;
	unsigned max_length = 32;
	if (::inet_pton(AF_INET, address_text.c_str(), address) != 1) {
		family = AF_INET6;
		max_length = 128;
		if (::inet_pton(AF_INET6, address_text.c_str(), address) != 1)
			return reject(spec, value, "does not start with an IPv4 or IPv6 address");
	}

	if (!all_digits(length_text) || length_text.size() > 3 || (length_text.size() > 1 && length_text.front() == '0'))
		return reject(spec, value, "has an invalid prefix length (decimal 0.." + std::to_string(max_length) + ")");
	const unsigned prefix_length = static_cast<unsigned>(std::stoul(std::string(length_text)));
	if (prefix_length > max_length)
		return reject(spec, value, "has a prefix length above " + std::to_string(max_length));

	for (unsigned bit = prefix_length; bit < max_length; ++bit) {
		if (address[bit / 8] & (0x80u >> (bit % 8)))
			return reject(spec, value, "has bits set after the prefix length");
	}

	char out[INET6_ADDRSTRLEN];
	::inet_ntop(family, address, out, sizeof out);
	return std::string(out) + "/" + std::to_string(prefix_length);
}

Result<std::string> validate_duration(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, false); !ok)
		return tl::unexpected(ok.error());
	for (const char c : value)
		if (static_cast<unsigned char>(c) >= 0x80)
			return reject(spec, value, "is not a duration such as 90s, 15m, 8h or 1d");

	auto duration = parse_duration(value);
	if (!duration)
		return fail(Errc::invalid, "argument \"" + spec.name + "\": " + duration.error().message);

	if (*duration < spec.min_duration)
		return reject(spec, value, "is shorter than the minimum of " + std::to_string(spec.min_duration.count()) + "s");
	if (spec.max_duration && *duration > *spec.max_duration)
		return reject(spec, value, "is longer than the maximum of " + std::to_string(spec.max_duration->count()) + "s");
	return std::to_string(duration->count()) + "s";
}

Result<std::uint64_t> parse_size(std::string_view text)
{
	if (text.empty())
		return fail(Errc::invalid, "is empty, expected a size such as 512, 64K, 10M or 1G");

	std::uint64_t multiplier = 1;
	std::string_view digits = text;
	switch (text.back()) {
	case 'K': multiplier = std::uint64_t{1} << 10; break;
	case 'M': multiplier = std::uint64_t{1} << 20; break;
	case 'G': multiplier = std::uint64_t{1} << 30; break;
	case 'T': multiplier = std::uint64_t{1} << 40; break;
	default: break;
	}
	if (multiplier != 1)
		digits.remove_suffix(1);

	if (!all_digits(digits))
		return fail(Errc::invalid, "is not a size such as 512, 64K, 10M or 1G (digits, then K, M, G or T)");
	if (digits.size() > 1 && digits.front() == '0')
		return fail(Errc::invalid, "has a leading zero");

	std::uint64_t number = 0;
	for (const char c : digits) {
		const auto digit = static_cast<std::uint64_t>(c - '0');
		if (number > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
			return fail(Errc::invalid, "is too large");
		number = number * 10 + digit;
	}
	if (number > std::numeric_limits<std::uint64_t>::max() / multiplier)
		return fail(Errc::invalid, "is too large");
	return number * multiplier;
}

Result<std::string> validate_size(const ArgSpec& spec, std::string_view value)
{
	if (auto ok = check_positional(spec, value, false); !ok)
		return tl::unexpected(ok.error());
	auto bytes = parse_size(value);
	if (!bytes)
		return reject(spec, value, bytes.error().message);
	if (spec.max_size && *bytes > *spec.max_size)
		return reject(spec, value, "is larger than the maximum of " + std::to_string(*spec.max_size) + " bytes");
	return std::to_string(*bytes);
}

Result<std::string> validate_flag(const ArgSpec& spec, std::string_view value)
{
	if (value != spec.flag_text)
		return reject(spec, value, "is not the switch " + quote_value(spec.flag_text));
	return spec.flag_text;
}

Result<std::string> validate_argument(const ArgSpec& spec, std::string_view value)
{
	switch (spec.type) {
	case ArgType::enum_: return validate_enum(spec, value);
	case ArgType::int_: return validate_int(spec, value);
	case ArgType::string: return validate_string(spec, value);
	case ArgType::path: return validate_path(spec, value);
	case ArgType::hostname: return validate_hostname(spec, value);
	case ArgType::ip: return validate_ip(spec, value);
	case ArgType::cidr: return validate_cidr(spec, value);
	case ArgType::duration: return validate_duration(spec, value);
	case ArgType::size: return validate_size(spec, value);
	case ArgType::flag: return validate_flag(spec, value);
	}
	return fail(Errc::internal, "argument \"" + spec.name + "\": unknown argument type");
}

}  // namespace jead

namespace jead {

Result<PathTarget> path_descriptor_target(const ArgSpec& spec, const std::string& canonical)
{
	// The innermost prefix that contains the path gives the smallest tree
	// the kernel confines the open to.
	std::optional<PathTarget> best;
	for (const auto& prefix : spec.prefixes) {
		const std::string real_prefix = resolved_prefix(prefix);
		if (!path_within(canonical, real_prefix))
			continue;
		if (best && best->directory.size() >= real_prefix.size())
			continue;
		std::string rest = canonical.substr(real_prefix == "/" ? 1 : std::min(canonical.size(), real_prefix.size() + 1));
		best = PathTarget{real_prefix, rest.empty() ? "." : std::move(rest)};
	}
	if (!best)
		return fail(Errc::denied, "argument \"" + spec.name + "\": " + quote_value(canonical) +
		                              " is no longer under any of: " + join(spec.prefixes));
	return *best;
}

}  // namespace jead
