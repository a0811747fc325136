// Typed argument validators: one function per argument type. Each takes the
// argument's spec and one word typed by the client. It returns the canonical
// value, which becomes exactly one argv element, or an error whose message
// names the argument, the value (escaped) and the rule it broke:
//   argument "unit": "foo" is not one of: nginx.service, php-fpm.service
// All are pure functions except validate_path(), which reads the file system
// to resolve symbolic links.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "roles/role.h"

namespace jead {

Result<std::string> validate_enum(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_int(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_string(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_path(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_hostname(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_ip(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_cidr(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_duration(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_size(const ArgSpec& spec, std::string_view value);
Result<std::string> validate_flag(const ArgSpec& spec, std::string_view value);

// Dispatches on spec.type to the validator above.
Result<std::string> validate_argument(const ArgSpec& spec, std::string_view value);

// Parses a byte size: decimal digits with an optional binary unit suffix
// K, M, G or T (powers of 1024), such as "512", "64K" or "1G". No sign,
// spaces, leading zeros, fractions or lower-case units.
Result<std::uint64_t> parse_size(std::string_view text);

// Lexically normalises an absolute path: collapses "//", drops "." and a
// trailing "/", and rejects relative paths, ".." components, control bytes
// and empty input. Does not touch the file system.
Result<std::string> normalize_absolute_path(std::string_view path);

// Returns true when `path` equals `prefix` or lies under it by whole
// components; both must be normalised. "/var/log/app" contains
// "/var/log/app/x" but not "/var/log/app-old".
bool path_within(std::string_view path, std::string_view prefix);

// Where a path argument with bind = "descriptor" is opened: the resolved
// prefix directory that contains `canonical` (the innermost when several do)
// and the path below it, "." for the prefix itself.
struct PathTarget {
	std::string directory;
	std::string relative;
};
Result<PathTarget> path_descriptor_target(const ArgSpec& spec, const std::string& canonical);

// Compiles a string argument's pattern with RE2, which never backtracks:
// matching time is linear in the value's length. Back-references,
// lookaround, repetition counts above 1000 and patterns that need more than
// limits::kMaxPatternMemoryBytes are rejected.
Result<std::shared_ptr<const re2::RE2>> compile_pattern(const std::string& pattern);

// Returns the name of `type` as written in role files ("int", "path", ...).
std::string_view arg_type_name(ArgType type);

}  // namespace jead
