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
	const Verb* verb_spec = nullptr;
	std::vector<std::pair<std::string, std::string>> arguments;  // name, canonical value
	std::vector<std::string> argv;  // argv[0] is the absolute program path
};

// Tokenizes `command_line`, looks up the verb in `role`, validates every
// argument by its type and fills the argv template. Nothing runs here.
Decision decide(const Role& role, std::string_view command_line);

}  // namespace jead
