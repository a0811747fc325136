// libFuzzer target for the role file loader (roles/role_loader.cc) and
// decide(). It parses the input as a role file. When the file loads, it runs
// the [[test]] cases and a few fixed command lines through decide() and
// checks that every allowed decision has an absolute argv[0] equal to the
// verb's program. Role files may name paths, so decide() can read (never
// write) the file system.
//
// Not built by CMake. Build and run from the repository root, linking
// Debian's shared toml++ library as the CMake build does:
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 \
//     fuzz/role_fuzz.cc roles/*.cc common/escape.cc common/duration.cc -ltomlplusplus -o /tmp/role_fuzz
//   /tmp/role_fuzz -max_total_time=30 -max_len=4096 fuzz/corpus/role
// NOTE: header-only toml++ 3.3 built without NDEBUG aborts on an internal
// assertion in parse_key() for input such as "[\x01"; the shared library
// (built with assertions off) reports a parse error instead.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "roles/policy.h"

namespace {

void require(bool condition)
{
	if (!condition)
		__builtin_trap();
}

void check_decision(const jead::Role& role, std::string_view line)
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const std::string_view text(reinterpret_cast<const char*>(data), size);
	auto role = jead::parse_role(text, "fuzz.toml");
	if (!role) {
		require(!role.error().message.empty());
		return 0;
	}

	(void)jead::run_role_tests(*role);
	for (const auto& test : role->tests)
		check_decision(*role, test.line);
	for (const auto& verb : role->verbs) {
		check_decision(*role, verb.name);
		check_decision(*role, verb.name + " a 1 -x /tmp 10.0.0.0/8");
	}
	return 0;
}
