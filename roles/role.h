// The role capability model: a role is a set of verbs, each a fixed program
// and argv template whose placeholders are filled by typed arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace jead {

enum class ArgType { enum_, int_, string, path, hostname, ip, cidr, duration, size, flag };

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
	bool allow_leading_dash = false;      // string
	std::vector<std::string> prefixes;    // path
	std::string flag_text;                // flag: the literal switch
};

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
	std::optional<std::string> run_as_user;
};

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

	const Verb* find_verb(std::string_view verb_name) const;
};

// Loads one role file. Errors read "FILE:LINE:COL: message".
Result<Role> load_role_file(const std::filesystem::path& file);

// Loads every "*.toml" file in `dir`; the role name is the file stem.
Result<std::map<std::string, Role, std::less<>>> load_roles_dir(const std::filesystem::path& dir);

}  // namespace jead
