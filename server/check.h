// `jead check`: loads the config and every role file, runs each role's
// [[test]] cases, lints the roles, and reports every problem it finds
// instead of stopping at the first.
#pragma once

#include <cstddef>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "roles/lint.h"

namespace jead {

struct CheckReport {
	// Load errors, run-as and grant errors and failed [[test]] cases. Each
	// starts with "FILE:LINE:COL: " or "FILE: " when it has a position.
	std::vector<std::string> errors;
	std::vector<LintWarning> warnings;
	std::size_t roles_loaded = 0;
	std::size_t tests_run = 0;
	std::string policy_version;   // set only when load_policy() accepted everything
};

// Checks the policy that `config_file` describes. Every role file is
// loaded on its own, so an error in one file does not hide errors in
// another. When nothing failed, load_policy() confirms the whole policy as
// `jead serve` would load it.
CheckReport check_policy(const std::filesystem::path& config_file);

// Prints the errors, then the warnings, then one summary line, and returns
// the exit status: 0 when there is no error and no warning (warnings are
// allowed with `allow_warnings`), 1 otherwise.
int print_check_report(const CheckReport& report, const std::filesystem::path& config_file, bool allow_warnings,
                       std::ostream& out);

}  // namespace jead
