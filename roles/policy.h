// The command decision: a command line against a role, deny by default.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roles/role.h"

namespace jead {

struct Decision {
	bool allowed = false;
	std::string reason;   // why it was denied; "allowed" otherwise
	std::string verb;     // the first word, as received (may be unknown)
	const Verb* verb_spec = nullptr;  // set once the verb is found, on denials too
	std::vector<std::pair<std::string, std::string>> arguments;  // name, canonical value
	std::vector<std::string> argv;  // argv[0] is the absolute program path
	std::size_t column = 0;  // 1-based column of the offending byte or word in a denial; 0 when none
};

// Tokenizes `command_line`, looks up the verb in `role`, validates every
// argument by its type and fills the argv template. Nothing runs here.
// Denial reasons are one line starting with "denied: ", for example
//   denied: argument "unit": "foo" is not one of: nginx.service, php-fpm.service
// A word equal to a flag argument's switch sets that flag wherever it
// appears. The other words fill the positional arguments in declaration
// order: required ones first, then optional ones while words remain, and a
// variadic last argument takes the rest up to its max_count.
Decision decide(const Role& role, std::string_view command_line);

// A path argument with bind = "descriptor": jead opens `relative` beneath
// `directory` in the verb's process, and the program gets /proc/self/fd/N
// as argv[argv_index] instead of the path.
struct PathDescriptor {
	std::size_t argv_index = 0;   // index into Decision::argv
	std::string argument;         // the argument's name, for messages
	std::string path;             // the checked path, as in Decision::argv
	std::string directory;        // resolved prefix
	std::string relative;         // below `directory`; "." for the prefix itself
	PathKind kind = PathKind::any;
};

// Lists the descriptor-bound path arguments of an allowed decision, in
// argv order. Fails when a path no longer lies under its prefixes, which
// can only happen when a prefix's links changed since the decision.
Result<std::vector<PathDescriptor>> path_descriptors(const Decision& decision);

// Returns the usage line of a verb, such as "restart UNIT" or
// "tail [-f] FILE [LINES]".
std::string verb_usage(const Verb& verb);

}  // namespace jead
