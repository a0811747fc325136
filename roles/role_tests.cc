// run_role_tests(): the [[test]] cases of a role file, run through decide().
#include "common/escape.h"
#include "roles/policy.h"
#include "roles/role.h"

namespace jead {

namespace {

std::string format_argv(const std::vector<std::string>& argv)
{
	std::string out = "[";
	for (std::size_t i = 0; i < argv.size(); ++i) {
		if (i > 0)
			out += ", ";
		out += escape_untrusted(argv[i]);
	}
	return out + "]";
}

}  // namespace

std::vector<std::string> run_role_tests(const Role& role)
{
	std::vector<std::string> failures;
	for (const auto& test : role.tests) {
		const Decision decision = decide(role, test.line);
		const std::string prefix = test.location + ": test " + escape_untrusted(test.line) + ": ";

		if (test.expect_allow && !decision.allowed) {
			failures.push_back(prefix + "expected allow, got " + decision.reason);
			continue;
		}
		if (!test.expect_allow && decision.allowed) {
			failures.push_back(prefix + "expected deny, got allowed with argv " + format_argv(decision.argv));
			continue;
		}
		if (test.argv && *test.argv != decision.argv)
			failures.push_back(prefix + "expected argv " + format_argv(*test.argv) + ", got " +
			                   format_argv(decision.argv));
		if (test.reason_contains && decision.reason.find(*test.reason_contains) == std::string::npos)
			failures.push_back(prefix + "expected a reason containing " + escape_untrusted(*test.reason_contains) +
			                   ", got " + escape_untrusted(decision.reason, 512));
	}
	return failures;
}

}  // namespace jead
