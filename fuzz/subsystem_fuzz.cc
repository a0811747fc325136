// libFuzzer target for the `jea` subsystem's request path: the input is the
// bytes a client sends on the channel, split into lines at '\n' as the
// non-pty shell and subsystem do. Each line takes the path of run_line() in
// server/session.cc. A trailing '\r' is dropped and blank lines are skipped.
// json_words_to_line() turns a line starting with '[' into a command line.
// The result is tokenized and decided against a fixed role. The target traps
// when one of these properties breaks:
//   - a JSON array of strings that json_words_to_line() accepts tokenizes
//     back into exactly its words, unless a word holds a byte the tokenizer
//     rejects (a control byte or tab) or the line passes the tokenizer's caps;
//   - a denial has a reason starting with "denied: " and no argv;
//   - an allowed decision has argv[0] equal to the verb's absolute program;
//   - decide() on the words of an allowed line, requoted, allows it again
//     with the same argv.
// Path arguments are resolved under /tmp, so the target reads (never writes)
// that directory.
//
// Built by fuzz/CMakeLists.txt (cmake -DJEAD_FUZZ=ON with clang); by hand,
// from the repository root:
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 $(pkg-config --cflags libssh) \
//     fuzz/subsystem_fuzz.cc server/shell_text.cc roles/*.cc common/*.cc \
//     -ltomlplusplus -lcrypto -o /tmp/subsystem_fuzz
//   /tmp/subsystem_fuzz -max_total_time=30 -max_len=16384 /tmp/subsystem_corpus fuzz/corpus/subsystem
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "roles/limits.h"
#include "roles/policy.h"
#include "roles/tokenizer.h"
#include "server/session_internal.h"

namespace {

// The cap run_line() passes to json_words_to_line() (kMaxJsonWords in
// server/session.cc).
constexpr std::size_t kMaxJsonWords = 64;
// Lines per input: enough for a scripted session, few enough that one run
// stays fast.
constexpr std::size_t kMaxLinesPerInput = 32;

constexpr std::string_view kRoleText = R"toml(
description = "Fuzz role: one verb per argument type"

[[verb]]
name = "restart"
command = ["/usr/bin/systemctl", "restart", "{unit}"]
args = [ { name = "unit", type = "enum", values = ["nginx.service", "php-fpm.service", "--now"] } ]

[[verb]]
name = "count"
command = ["/usr/bin/seq", "{from}", "{to}"]
args = [
  { name = "from", type = "int", min = -100, max = 100 },
  { name = "to", type = "int", min = 1, max = 1000, optional = true, default = "10" },
]

[[verb]]
name = "note"
command = ["/usr/bin/echo", "{text}"]
args = [ { name = "text", type = "string", pattern = "[a-zA-Z0-9 ._'\"-]+", max_length = 128 } ]

[[verb]]
name = "list"
command = ["/usr/bin/ls", "-l", "--", "{paths}"]
args = [ { name = "paths", type = "path", prefixes = ["/tmp"], must_exist = false, variadic = true, max_count = 8 } ]

[[verb]]
name = "ping"
command = ["/usr/bin/ping", "-c", "1", "{host}"]
args = [ { name = "host", type = "hostname", allow_ip = true } ]

[[verb]]
name = "route"
command = ["/usr/sbin/ip", "route", "get", "{network}", "{address}"]
args = [
  { name = "network", type = "cidr" },
  { name = "address", type = "ip" },
]

[[verb]]
name = "logs"
command = ["/usr/bin/journalctl", "--since", "{since}", "{follow}", "--max-bytes", "{limit}"]
args = [
  { name = "since", type = "duration" },
  { name = "follow", type = "flag", flag = "--follow" },
  { name = "limit", type = "size" },
]
)toml";

void require(bool condition)
{
	if (!condition)
		__builtin_trap();
}

const jead::Role& fuzz_role()
{
	static const jead::Role role = [] {
		auto parsed = jead::parse_role(kRoleText, "fuzz.toml");
		require(parsed.has_value());
		return *parsed;
	}();
	return role;
}

bool tokenizer_accepts_bytes(const std::string& word)
{
	for (const char c : word) {
		const auto b = static_cast<unsigned char>(c);
		if (b < 0x20 || b == 0x7F)
			return false;
	}
	return true;
}

// Quotes `word` in single quotes for the tokenizer, as json_words_to_line does.
std::string single_quoted(const std::string& word)
{
	std::string quoted = "'";
	for (const char c : word) {
		if (c == '\'')
			quoted += "'\\''";
		else
			quoted += c;
	}
	return quoted + "'";
}

// Checks that the line built from a JSON request tokenizes back into the
// request's words.
void check_json_round_trip(std::string_view json, const std::string& line)
{
	const auto request = nlohmann::json::parse(json, nullptr, false);
	require(request.is_array() && !request.empty() && request.size() <= kMaxJsonWords);

	std::vector<std::string> expected;
	bool tokenizable = line.size() <= jead::limits::kMaxCommandLineBytes;
	for (const auto& word : request) {
		require(word.is_string());
		expected.push_back(word.get<std::string>());
		tokenizable = tokenizable && tokenizer_accepts_bytes(expected.back());
	}

	const auto words = jead::tokenize(line);
	if (!tokenizable) {
		require(!words.has_value());
		return;
	}
	require(words.has_value());
	require(*words == expected);
}

void check_decision(const jead::Role& role, const std::string& line)
{
	const jead::Decision decision = jead::decide(role, line);
	if (!decision.allowed) {
		require(decision.reason.rfind("denied: ", 0) == 0);
		require(decision.argv.empty());
		return;
	}

	require(decision.verb_spec != nullptr);
	require(!decision.argv.empty());
	require(decision.argv.front() == decision.verb_spec->program);
	require(decision.argv.front().front() == '/');

	// The same words, requoted, must reach the same decision.
	const auto words = jead::tokenize(line);
	require(words.has_value());
	std::string requoted;
	for (const auto& word : *words)
		requoted += (requoted.empty() ? "" : " ") + single_quoted(word);
	const jead::Decision again = jead::decide(role, requoted);
	require(again.allowed);
	require(again.argv == decision.argv);
}

// One request line, handled as run_line() handles it in subsystem mode
// after the transcript's input record and before the builtins.
void handle_line(const jead::Role& role, std::string line)
{
	if (!line.empty() && line.back() == '\r')
		line.pop_back();
	if (line.find_first_not_of(" \t") == std::string::npos)
		return;

	if (line.front() == '[') {
		auto converted = jead::json_words_to_line(line, kMaxJsonWords);
		if (!converted) {
			require(!converted.error().message.empty());
			return;
		}
		check_json_round_trip(line, *converted);
		line = std::move(*converted);
	}
	check_decision(role, line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const jead::Role& role = fuzz_role();
	std::string_view input(reinterpret_cast<const char*>(data), size);

	for (std::size_t count = 0; count < kMaxLinesPerInput && !input.empty(); ++count) {
		const auto newline = input.find('\n');
		const std::string_view line = input.substr(0, newline);
		handle_line(role, std::string(line));
		if (newline == std::string_view::npos)
			break;
		input.remove_prefix(newline + 1);
	}
	return 0;
}
