// Warnings about role definitions that load but are risky. The rules cover
// programs that can start other programs and program files that users other
// than root can change. They also cover user values that a program could
// read as options, path arguments that allow the whole file system, string
// arguments without a length cap and environment variables that change
// which code runs. `jead check` prints the warnings, and they never stop a
// role from loading.
#pragma once

#include <string>
#include <vector>

#include "roles/role.h"

namespace jead {

struct LintWarning {
	std::string location;   // "FILE:LINE:COL" of the verb or argument, or the role file
	std::string rule;       // the rule's name, such as "runs-programs"
	std::string message;    // one line, naming the verb or argument and what to change
};

// Returns the warnings for `role`, in file order. Reads the file system:
// each verb's program, the symbolic links leading to it and their
// directories are checked for existence and for who can write them.
std::vector<LintWarning> lint_role(const Role& role);

}  // namespace jead
