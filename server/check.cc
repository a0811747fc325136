#include "server/check.h"

#include <algorithm>
#include <regex>
#include <system_error>

#include "roles/limits.h"
#include "roles/role.h"
#include "server/config.h"
#include "server/policy_state.h"
#include "server/process.h"

namespace jead {

namespace {

// Lists the role files the way load_roles_dir() picks them: regular
// "*.toml" files, sorted by name, at most limits::kMaxRoleFilesPerDir.
Result<std::vector<std::filesystem::path>> list_role_files(const std::filesystem::path& dir)
{
	std::error_code ec;
	std::filesystem::directory_iterator it(dir, ec);
	if (ec)
		return fail(Errc::io, dir.string() + ": could not list role directory: " + ec.message());

	std::vector<std::filesystem::path> files;
	for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
		if (ec)
			break;
		if (it->path().extension() != ".toml" || !it->is_regular_file(ec))
			continue;
		if (files.size() == limits::kMaxRoleFilesPerDir)
			return fail(Errc::limit, dir.string() + ": more than " + std::to_string(limits::kMaxRoleFilesPerDir) +
			                             " role files");
		files.push_back(it->path());
	}
	if (ec)
		return fail(Errc::io, dir.string() + ": could not list role directory: " + ec.message());
	std::sort(files.begin(), files.end());
	return files;
}

// Resolves the role's run-as accounts as load_policy() does, reporting
// every account that fails instead of the first.
void check_run_as(const Role& role, std::vector<std::string>& errors)
{
	if (auto run_as = resolve_run_as(role.run_as_user, role.run_as_group); !run_as)
		errors.push_back(role.file.string() + ": " + run_as.error().message);
	for (const auto& verb : role.verbs) {
		if (!verb.run_as_user)
			continue;
		if (auto run_as = resolve_run_as(verb.run_as_user, role.run_as_group); !run_as)
			errors.push_back(verb.location + ": verb \"" + verb.name + "\": " + run_as.error().message);
	}
}

}  // namespace

CheckReport check_policy(const std::filesystem::path& config_file)
{
	CheckReport report;

	auto config = load_config(config_file);
	if (!config) {
		report.errors.push_back(config.error().message);
		return report;
	}

	auto files = list_role_files(config->roles_dir);
	if (!files) {
		report.errors.push_back(files.error().message);
		return report;
	}

	std::vector<Role> roles;
	for (const auto& file : *files) {
		auto role = load_role_file(file);
		if (!role) {
			report.errors.push_back(role.error().message);
			continue;
		}
		roles.push_back(std::move(*role));
	}
	report.roles_loaded = roles.size();

	for (const auto& [role_name, principals] : config->grants) {
		const bool found = std::any_of(roles.begin(), roles.end(), [&](const Role& r) { return r.name == role_name; });
		const bool failed = std::any_of(files->begin(), files->end(),
		                                [&](const std::filesystem::path& f) { return f.stem() == role_name; });
		if (!found && !failed)
			report.errors.push_back(config->file.string() + ": [grants] names role \"" + role_name + "\", but " +
			                        config->roles_dir.string() + " has no " + role_name + ".toml");
	}

	for (const auto& role : roles) {
		check_run_as(role, report.errors);
		for (auto& failure : run_role_tests(role))
			report.errors.push_back(std::move(failure));
		report.tests_run += role.tests.size();
		for (auto& warning : lint_role(role))
			report.warnings.push_back(std::move(warning));
	}

	// The daemon's own loader has the last word, so that check never
	// accepts a policy that `jead serve` would reject.
	if (report.errors.empty()) {
		auto policy = load_policy(config_file);
		if (policy)
			report.policy_version = (*policy)->version;
		else
			report.errors.push_back(policy.error().message);
	}
	return report;
}

int print_check_report(const CheckReport& report, const std::filesystem::path& config_file, bool allow_warnings,
                       std::ostream& out)
{
	// "FILE:LINE:COL: message" becomes "FILE:LINE:COL: error: message", as
	// compilers print it; an error without a position starts with "error: ".
	static const std::regex located(R"(^([^:\n]+:[0-9]+:[0-9]+): (.*)$)");
	for (const auto& error : report.errors) {
		std::smatch match;
		if (std::regex_match(error, match, located))
			out << match[1] << ": error: " << match[2] << "\n";
		else
			out << "error: " << error << "\n";
	}
	for (const auto& warning : report.warnings)
		out << warning.location << ": warning: " << warning.message << " [" << warning.rule << "]\n";

	const std::string counts = std::to_string(report.roles_loaded) + " roles, " + std::to_string(report.tests_run) +
	                           " tests";
	const auto plural = [](std::size_t n, const char* word) {
		return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
	};
	if (!report.errors.empty()) {
		out << config_file.string() << ": failed: " << plural(report.errors.size(), "error") << ", "
		    << plural(report.warnings.size(), "warning") << " (" << counts << ")\n";
		return 1;
	}
	if (!report.warnings.empty() && !allow_warnings) {
		out << config_file.string() << ": failed: " << plural(report.warnings.size(), "warning") << " (" << counts
		    << "); fix them, or pass --allow-warnings to accept them\n";
		return 1;
	}
	out << config_file.string() << ": ok, " << counts << " passed";
	if (!report.warnings.empty())
		out << ", " << plural(report.warnings.size(), "warning") << " allowed";
	out << ", policy " << report.policy_version << "\n";
	return 0;
}

}  // namespace jead
