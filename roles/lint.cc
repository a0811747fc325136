#include "roles/lint.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>

#include "common/escape.h"

namespace jead {

namespace {

// Linux follows at most 40 symbolic links in one path lookup (MAXSYMLINKS).
constexpr int kMaxSymlinkHops = 40;

// A class of programs that can start other programs. A rule with
// `triggers` warns only when one of those options is among the verb's
// literal words. A rule with `safe_with` is silenced by that literal word.
struct ProgramRule {
	std::vector<std::string_view> names;
	std::string_view reason;      // completes the sentence "PROGRAM ..."
	std::vector<std::string_view> triggers;
	std::string_view safe_with;
};

const std::vector<ProgramRule>& program_rules()
{
	static const std::vector<ProgramRule> rules = {
		{{"sh", "ash", "bash", "rbash", "dash", "zsh", "ksh", "mksh", "pdksh", "posh", "yash", "csh", "tcsh", "fish",
		  "elvish", "xonsh", "pwsh", "nu"},
		 "is a shell and runs any command it is given",
		 {},
		 {}},
		{{"python", "pypy", "perl", "ruby", "irb", "node", "nodejs", "deno", "bun", "lua", "luajit", "php", "tclsh",
		  "wish", "expect", "guile", "rscript", "julia", "java", "jshell", "jrunscript", "groovy", "osascript"},
		 "is an interpreter and runs any code it is given",
		 {},
		 {}},
		{{"awk", "gawk", "mawk", "nawk", "original-awk"},
		 "runs commands from its script with system() and pipes",
		 {},
		 {}},
		{{"vi", "vim", "vim.basic", "vim.tiny", "vim.nox", "vimdiff", "view", "nvim", "ex", "ed", "nano", "pico", "emacs",
		  "emacs-nox", "emacs-gtk", "mg", "jed", "joe", "mcedit", "micro", "kak", "hx", "editor", "sensible-editor"},
		 "is an editor, and editors can start a shell",
		 {},
		 {}},
		{{"less", "more", "most", "pg", "man", "w3m", "lynx", "sensible-pager", "pager"},
		 "is a pager, and pagers can start a shell or an editor",
		 {},
		 {}},
		{{"env", "xargs", "sudo", "su", "doas", "runuser", "pkexec", "nice", "ionice", "chrt", "taskset", "timeout",
		  "nohup", "setsid", "stdbuf", "chroot", "unshare", "nsenter", "flock", "watch", "time", "script", "setpriv",
		  "capsh", "prlimit", "systemd-run", "systemd-nspawn", "run-parts", "parallel", "entr", "strace", "ltrace",
		  "gdb", "lldb", "valgrind", "perf", "firejail", "bwrap", "start-stop-daemon", "busybox", "toybox"},
		 "runs the program named in its arguments",
		 {},
		 {}},
		{{"ssh", "slogin", "scp", "sftp"},
		 "runs commands on other hosts and runs the ProxyCommand and LocalCommand programs of ssh_config",
		 {},
		 {}},
		{{"rsync"}, "starts a remote shell for HOST:PATH operands and runs -e and --rsync-path commands", {}, {}},
		{{"git"},
		 "runs hooks, \"!\" aliases and programs named in repository configuration, such as core.pager, "
		 "core.fsmonitor and core.sshCommand",
		 {},
		 {}},
		{{"make", "crontab", "at", "batch", "dpkg", "apt", "apt-get", "aptitude", "pip", "npm", "docker", "podman",
		  "kubectl", "nerdctl", "tmux", "screen", "mysql", "mariadb", "psql", "sqlite3"},
		 "runs commands, scripts or a shell as part of its normal use",
		 {},
		 {}},
		{{"find"}, "runs programs with its -exec and -ok actions", {"-exec", "-execdir", "-ok", "-okdir"}, {}},
		{{"tar"},
		 "runs programs with these options",
		 {"--to-command", "--use-compress-program", "-I", "--checkpoint-action", "--info-script", "--new-volume-script",
		  "-F", "--rsh-command", "--rmt-command"},
		 {}},
		{{"tcpdump"}, "runs the program given to -z after each capture file", {"-z"}, {}},
		{{"zip"}, "runs the program given to -TT or --unzip-command", {"-TT", "--unzip-command"}, {}},
		{{"sed"},
		 "runs shell commands with the e command and the e flag of s///, and writes files with w; add \"--sandbox\" "
		 "to \"command\"",
		 {},
		 "--sandbox"},
		{{"systemctl", "journalctl", "loginctl", "machinectl", "busctl", "coredumpctl", "networkctl", "resolvectl",
		  "timedatectl", "localectl", "hostnamectl", "homectl", "userdbctl", "portablectl", "bootctl", "systemd-analyze",
		  "systemd-cgls", "systemd-delta"},
		 "pages its output through a pager such as less, which can start a shell; add \"--no-pager\" to \"command\"",
		 {},
		 "--no-pager"},
		{{"systemctl"}, "starts an editor for the edit command", {"edit"}, {}},
		{{"coredumpctl"}, "starts a debugger for the debug and gdb commands", {"debug", "gdb"}, {}},
	};
	return rules;
}

// Strips a trailing version from a program name, so "python3.11",
// "perl5.36.0" and "lua5.4" match "python", "perl" and "lua".
std::string strip_version(std::string name)
{
	while (!name.empty() && ((name.back() >= '0' && name.back() <= '9') || name.back() == '.'))
		name.pop_back();
	if (!name.empty() && name.back() == '-')
		name.pop_back();
	return name;
}

std::string lower(std::string_view text)
{
	std::string out(text);
	for (char& c : out)
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
	return out;
}

bool rule_names(const ProgramRule& rule, const std::string& name)
{
	const std::string plain = lower(name);
	const std::string unversioned = strip_version(plain);
	return std::any_of(rule.names.begin(), rule.names.end(),
	                   [&](std::string_view candidate) { return candidate == plain || candidate == unversioned; });
}

// The words an author wrote that can reach the program's argv: template
// literals, enum values, flag switches and defaults.
std::vector<std::string> author_words(const Verb& verb)
{
	std::vector<std::string> words;
	for (const auto& element : verb.argv_template)
		if (!element.arg_index)
			words.push_back(element.literal);
	for (const auto& arg : verb.args) {
		words.insert(words.end(), arg.values.begin(), arg.values.end());
		if (arg.type == ArgType::flag)
			words.push_back(arg.flag_text);
		if (arg.default_value)
			words.push_back(*arg.default_value);
	}
	return words;
}

// Returns whether `word` gives the option `trigger`: exactly, as
// "--option=value", or, for a one-letter option such as "-I", inside a
// cluster of short options such as "-xI".
bool word_gives_option(std::string_view word, std::string_view trigger)
{
	if (word == trigger)
		return true;
	if (trigger.size() > 2 && trigger.starts_with("--") && word.starts_with(trigger) && word[trigger.size()] == '=')
		return true;
	const bool short_option = trigger.size() == 2 && trigger[0] == '-';
	const bool cluster = word.size() > 2 && word[0] == '-' && word[1] != '-';
	return short_option && cluster && word.find(trigger[1], 1) != std::string_view::npos;
}

// Returns whether a client could type a value for `arg` that starts with
// "-", so that a program could read it as an option. Enum values and flag
// switches are written by the role's author and are not counted.
bool client_value_may_start_with_dash(const ArgSpec& arg)
{
	if (arg.type == ArgType::string)
		return arg.allow_leading_dash;
	if (arg.type == ArgType::int_)
		return arg.min < 0;
	return false;
}

std::string program_names(const Verb& verb, std::vector<std::string>& names)
{
	const std::filesystem::path program(verb.program);
	names.push_back(program.filename().string());
	std::error_code ec;
	const auto resolved = std::filesystem::canonical(program, ec);
	if (!ec && resolved.filename() != program.filename()) {
		names.push_back(resolved.filename().string());
		return verb.program + " (" + resolved.filename().string() + ")";
	}
	return verb.program;
}

void lint_runs_programs(const Verb& verb, std::vector<LintWarning>& out)
{
	std::vector<std::string> names;
	const std::string program_label = program_names(verb, names);
	const std::vector<std::string> words = author_words(verb);
	const auto any_dash_argument = std::find_if(verb.args.begin(), verb.args.end(), client_value_may_start_with_dash);

	for (const auto& rule : program_rules()) {
		if (std::none_of(names.begin(), names.end(), [&](const std::string& name) { return rule_names(rule, name); }))
			continue;
		if (!rule.safe_with.empty() && std::find(words.begin(), words.end(), rule.safe_with) != words.end())
			continue;

		std::string detail;
		if (!rule.triggers.empty()) {
			std::set<std::string> found;
			for (const auto& word : words)
				for (const auto trigger : rule.triggers)
					if (word_gives_option(word, trigger))
						found.insert(escape_untrusted(word, 64));
			if (any_dash_argument != verb.args.end())
				found.insert("argument \"" + any_dash_argument->name + "\", which may be any option");
			if (found.empty())
				continue;
			for (const auto& item : found)
				detail += (detail.empty() ? ": " : ", ") + item;
		}
		out.push_back({verb.location, "runs-programs",
		               "verb \"" + verb.name + "\": " + program_label + " " + std::string(rule.reason) + detail});
	}
}

std::string user_name(uid_t uid)
{
	const struct passwd* pw = ::getpwuid(uid);
	return pw ? std::string(pw->pw_name) + " (uid " + std::to_string(uid) + ")" : "uid " + std::to_string(uid);
}

std::string group_name(gid_t gid)
{
	const struct group* gr = ::getgrgid(gid);
	return gr ? std::string(gr->gr_name) + " (gid " + std::to_string(gid) + ")" : "gid " + std::to_string(gid);
}

// Returns who other than root can change the file or directory described
// by `info`, or nothing. A group- or world-writable directory with the
// sticky bit is not counted: others cannot rename or remove the root-owned
// entry inside it, and that entry is checked on its own.
std::optional<std::string> non_root_writer(const struct stat& info)
{
	if (info.st_uid != 0)
		return "is owned by " + user_name(info.st_uid);
	const bool sticky_dir = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX) != 0;
	if ((info.st_mode & S_IWOTH) != 0 && !sticky_dir)
		return std::string("is writable by every user");
	if ((info.st_mode & S_IWGRP) != 0 && info.st_gid != 0 && !sticky_dir)
		return "is writable by group " + group_name(info.st_gid);
	return std::nullopt;
}

// Lists the path of the program and of each symbolic link target on the
// way to the file, bounded by kMaxSymlinkHops.
std::vector<std::filesystem::path> link_chain(const std::filesystem::path& program)
{
	std::vector<std::filesystem::path> chain;
	std::filesystem::path current = program.lexically_normal();
	for (int hop = 0; hop <= kMaxSymlinkHops; ++hop) {
		chain.push_back(current);
		std::error_code ec;
		if (!std::filesystem::is_symlink(std::filesystem::symlink_status(current, ec)))
			break;
		const auto target = std::filesystem::read_symlink(current, ec);
		if (ec)
			break;
		current = (target.is_absolute() ? target : current.parent_path() / target).lexically_normal();
	}
	return chain;
}

void lint_program_file(const Verb& verb, std::vector<LintWarning>& out)
{
	const std::string prefix = "verb \"" + verb.name + "\": program " + verb.program;
	struct stat file_info {};
	if (::stat(verb.program.c_str(), &file_info) != 0) {
		out.push_back({verb.location, "program-missing", prefix + " does not exist"});
		return;
	}
	if (!S_ISREG(file_info.st_mode) || (file_info.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
		out.push_back({verb.location, "program-missing", prefix + " is not an executable file"});

	// A user who can write any directory on the way to each link, or the
	// resolved file or its directories, can replace the program.
	std::vector<std::filesystem::path> checked;
	for (const auto& link : link_chain(verb.program))
		for (auto dir = link.parent_path(); !dir.empty(); dir = dir.parent_path()) {
			checked.push_back(dir);
			if (dir == dir.root_path())
				break;
		}
	std::error_code ec;
	const auto resolved = std::filesystem::canonical(verb.program, ec);
	if (!ec) {
		checked.push_back(resolved);
		for (auto dir = resolved.parent_path(); !dir.empty(); dir = dir.parent_path()) {
			checked.push_back(dir);
			if (dir == dir.root_path())
				break;
		}
	}

	std::set<std::string> seen;
	std::string reasons;
	for (const auto& path : checked) {
		if (!seen.insert(path.string()).second)
			continue;
		struct stat info {};
		if (::stat(path.c_str(), &info) != 0)
			continue;
		if (auto writer = non_root_writer(info))
			reasons += (reasons.empty() ? "" : "; ") + path.string() + " " + *writer;
	}
	if (!reasons.empty())
		out.push_back({verb.location, "program-writable",
		               prefix + " can be replaced by a user other than root: " + reasons});
}

// A prefix directory that a user other than root can write to lets that
// user swap a checked path for a symbolic link before the program opens
// it. The sticky bit does not help here: the user can still create a
// directory of their own and change what is inside it. Only the prefix
// itself is inspected, not the tree below it.
void lint_path_race(const std::string& head, const ArgSpec& arg, std::vector<LintWarning>& out)
{
	std::string reasons;
	for (const auto& prefix : arg.prefixes) {
		struct stat info {};
		if (::stat(prefix.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
			continue;
		std::optional<std::string> writer;
		if (info.st_uid != 0)
			writer = "is owned by " + user_name(info.st_uid);
		else if ((info.st_mode & S_IWOTH) != 0)
			writer = "is writable by every user";
		else if ((info.st_mode & S_IWGRP) != 0 && info.st_gid != 0)
			writer = "is writable by group " + group_name(info.st_gid);
		if (writer)
			reasons += (reasons.empty() ? "" : "; ") + prefix + " " + *writer;
	}
	if (!reasons.empty())
		out.push_back({arg.location, "path-race",
		               head + " is passed by name, and its prefix can be changed by a user other than root (" +
		                   reasons + "), who could swap the checked path for a link; set bind = \"descriptor\""});
}

void lint_arguments(const Verb& verb, std::vector<LintWarning>& out)
{
	bool after_double_dash = false;
	for (const auto& element : verb.argv_template) {
		if (!element.arg_index) {
			after_double_dash = after_double_dash || element.literal == "--";
			continue;
		}
		const ArgSpec& arg = verb.args[*element.arg_index];
		if (after_double_dash || !client_value_may_start_with_dash(arg))
			continue;
		const std::string dash_reason = arg.type == ArgType::string ? "allow_leading_dash = true" : "min is negative";
		out.push_back({arg.location, "value-as-option",
		               "verb \"" + verb.name + "\": argument \"" + arg.name + "\" may start with \"-\" (" + dash_reason +
		                   ") and no \"--\" comes before it in \"command\", so " + verb.program +
		                   " could read it as an option"});
	}

	for (const auto& arg : verb.args) {
		const std::string head = "verb \"" + verb.name + "\": argument \"" + arg.name + "\"";
		if (arg.type == ArgType::path && std::find(arg.prefixes.begin(), arg.prefixes.end(), "/") != arg.prefixes.end())
			out.push_back({arg.location, "path-unrestricted",
			               head + " has the prefix \"/\", which allows every path; list only the directories the verb "
			                      "needs"});
		if (arg.type == ArgType::path && !arg.bind_descriptor)
			lint_path_race(head, arg, out);
		if (arg.type == ArgType::string && !arg.max_length_set)
			out.push_back({arg.location, "string-length",
			               head + " has no max_length, so it accepts up to " + std::to_string(arg.max_length) +
			                   " bytes; set max_length to the longest value the program needs"});
	}
}

// Variables that choose a program, a library or code to load. Pager and
// editor variables set to "" or "cat" turn paging off and are accepted.
void lint_environment(const Role& role, std::vector<LintWarning>& out)
{
	static const std::set<std::string_view> code_variables = {
		"PATH", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME",
		"PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "LESSOPEN",
		"LESSCLOSE", "SSH_ASKPASS", "SUDO_ASKPASS", "GCONV_PATH", "LOCPATH", "HOSTALIASES",
	};
	static const std::set<std::string_view> program_variables = {
		"PAGER", "SYSTEMD_PAGER", "GIT_PAGER", "MANPAGER", "EDITOR", "VISUAL", "SYSTEMD_EDITOR",
	};

	for (const auto& [name, value] : role.environment) {
		const std::string head = "environment variable " + name + " = " + escape_untrusted(value, 64);
		if (program_variables.contains(name)) {
			if (!value.empty() && value != "cat")
				out.push_back({role.file.string(), "environment",
				               head + " names a program that verbs may start; set it to \"cat\" or remove it"});
		} else if (name == "LESSSECURE") {
			if (value != "1")
				out.push_back({role.file.string(), "environment",
				               head + " lets less start a shell or an editor; remove it (jead sets LESSSECURE=1)"});
		} else if (code_variables.contains(name) || name.starts_with("LD_") || name.starts_with("GIT_")) {
			out.push_back({role.file.string(), "environment",
			               head + " changes which programs or code every verb of the role runs; remove it"});
		}
	}
}

}  // namespace

std::vector<LintWarning> lint_role(const Role& role)
{
	std::vector<LintWarning> warnings;
	lint_environment(role, warnings);
	for (const auto& verb : role.verbs) {
		lint_runs_programs(verb, warnings);
		lint_program_file(verb, warnings);
		lint_arguments(verb, warnings);
	}
	return warnings;
}

}  // namespace jead
