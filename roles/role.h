// The role capability model: a role is a set of verbs, each a fixed program
// and argv template whose placeholders are filled by typed arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace re2 {
class RE2;
}

namespace jead {

enum class ArgType { enum_, int_, string, path, hostname, ip, cidr, duration, size, flag };

// The kind of file system object a path argument must name once resolved.
enum class PathKind { any, file, dir };

struct ArgSpec {
	std::string name;
	ArgType type = ArgType::string;
	std::string description;
	bool optional = false;
	std::optional<std::string> default_value;
	bool variadic = false;           // only on the last argument
	std::size_t max_count = 1;       // for variadic arguments

	std::vector<std::string> values;      // enum
	std::int64_t min = 0, max = 0;        // int
	std::string pattern;                  // string: must match the whole value
	std::size_t max_length = 256;         // string
	bool max_length_set = false;          // string: the role file gave max_length
	bool allow_leading_dash = false;      // string
	std::vector<std::string> prefixes;    // path
	std::string flag_text;                // flag: the literal switch

	std::shared_ptr<const re2::RE2> compiled_pattern;  // string: `pattern`, compiled once at load
	PathKind path_kind = PathKind::any;   // path
	bool must_exist = true;               // path
	bool follow_symlinks = true;          // path: links inside the prefixes are resolved; false rejects any link
	bool bind_descriptor = false;         // path: the program gets /proc/self/fd/N opened beneath the prefix
	bool allow_ip = false;                // hostname: accept an IPv4 or IPv6 address as well
	bool allow_trailing_dot = false;      // hostname
	bool allow_idn = false;               // hostname: accept "xn--" labels
	std::chrono::seconds min_duration{0};                 // duration, inclusive
	std::optional<std::chrono::seconds> max_duration;     // duration, inclusive
	std::optional<std::uint64_t> max_size;                // size in bytes, inclusive
	std::string location;                 // "FILE:LINE:COL" of the argument's table
};

// One element of a verb's argv template after loading.
struct TemplateElement {
	std::string literal;          // used when arg_index is empty
	std::optional<std::size_t> arg_index;  // index into Verb::args for a "{name}" placeholder
};

// How much of one stream of a verb the transcript keeps: every byte, the
// first and last bytes, or only the byte count and SHA-256.
enum class RecordMode { full, head_tail, digest };

// The largest record_tail: the tail is held in memory until the verb exits.
inline constexpr std::uint64_t kMaxRecordTailBytes = 16 * 1024 * 1024;

struct Verb {
	std::string name;
	std::string description;
	std::string program;                  // absolute path
	std::vector<std::string> command;     // argv template; command[0] == program
	std::vector<ArgSpec> args;
	std::chrono::seconds timeout{300};
	std::uint64_t max_output_bytes = 64ull << 20;
	bool reads_stdin = false;
	bool interactive = false;
	bool record_keystrokes = true;        // interactive: record what the client types on the terminal
	std::optional<std::string> run_as_user;
	std::uint32_t max_concurrent = 0;     // running at once on this host, all sessions; 0 = no limit
	std::uint32_t max_per_hour = 0;       // starts per principal in the last hour; 0 = no limit
	RecordMode record_output = RecordMode::full;   // stdout and stderr
	RecordMode record_stdin = RecordMode::full;
	std::uint64_t record_head_bytes = 64 * 1024;   // head-tail: bytes kept from the start
	std::uint64_t record_tail_bytes = 64 * 1024;   // head-tail: bytes kept from the end

	std::vector<TemplateElement> argv_template;  // command[1..] parsed; argv[0] is `program`
	std::string location;                        // "FILE:LINE:COL" of the verb's table
};

// One [[test]] case of a role file, run by run_role_tests().
struct RoleTest {
	std::string line;
	bool expect_allow = false;
	std::optional<std::vector<std::string>> argv;   // the expected argv of an allowed line
	std::optional<std::string> reason_contains;    // a substring the denial reason must contain
	std::string location;                          // "FILE:LINE:COL" of the test's table
};

// Resource limits for a role's verbs, each set with setrlimit(2) as both
// the soft and the hard limit in the verb's process before exec. An unset
// limit keeps the value jead itself runs with.
struct ResourceLimits {
	std::optional<std::uint64_t> cpu_seconds;   // RLIMIT_CPU, seconds of CPU time
	std::optional<std::uint64_t> open_files;    // RLIMIT_NOFILE, descriptors
	std::optional<std::uint64_t> file_size;     // RLIMIT_FSIZE, bytes
	std::optional<std::uint64_t> processes;     // RLIMIT_NPROC, processes of the run-as user
};

// The placeholders a role's `notify` command may use, each a whole element.
inline constexpr std::string_view kNotifyPlaceholders[] = {"{event}", "{role}", "{key_id}", "{serial}",
                                                           "{principals}", "{client}"};

struct Role {
	std::string name;                     // the file name without ".toml"
	std::filesystem::path file;
	std::string description;
	std::optional<std::string> run_as_user;
	std::optional<std::string> run_as_group;
	std::optional<std::chrono::seconds> max_cert_lifetime;
	std::optional<std::filesystem::path> working_directory;
	std::map<std::string, std::string> environment;  // fixed additions
	std::vector<Verb> verbs;
	ResourceLimits limits;                // the [limits] table
	// A break-glass role: certificates of at most 15 minutes (or
	// max_cert_lifetime if tighter), every event logged at warning level,
	// transcripts marked, and `notify` run at session start and end.
	bool break_glass = false;
	std::vector<std::string> notify;      // absolute program, then words or placeholders
	bool notify_required = false;         // a failed notification refuses the session
	std::vector<RoleTest> tests;

	// Returns the verb whose name equals `verb_name` byte for byte, or nullptr.
	const Verb* find_verb(std::string_view verb_name) const;
};

// Loads one role file. Errors read "FILE:LINE:COL: message". The file
// name must end in ".toml" and its stem, the role name, must match
// [a-z0-9][a-z0-9-]*.
Result<Role> load_role_file(const std::filesystem::path& file);

// Parses role text already in memory, as load_role_file() does for a file;
// `file` names the source in error messages and gives the role name.
Result<Role> parse_role(std::string_view text, const std::filesystem::path& file);

// Loads every "*.toml" file in `dir`; the role name is the file stem. Any
// file that fails to load fails the whole directory, so a typo never leaves
// a role half-configured. Other files are ignored.
Result<std::map<std::string, Role, std::less<>>> load_roles_dir(const std::filesystem::path& dir);

// Runs the role's [[test]] cases through decide() and returns one message
// per failed case, each starting with the case's "FILE:LINE:COL".
std::vector<std::string> run_role_tests(const Role& role);

}  // namespace jead
