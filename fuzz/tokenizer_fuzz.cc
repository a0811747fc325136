// libFuzzer target for the command-line tokenizer (roles/tokenizer.cc).
// It traps (so libFuzzer reports a crash) when a result breaks one of these
// properties: no control byte inside a word, at most
// limits::kMaxCommandWords words, increasing columns inside the line, and an
// error column inside the line or one past its end.
//
// Not built by CMake. Build and run from the repository root:
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     fuzz/tokenizer_fuzz.cc roles/tokenizer.cc common/escape.cc -o /tmp/tokenizer_fuzz
//   /tmp/tokenizer_fuzz -max_total_time=30 -max_len=9000 fuzz/corpus/tokenizer
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "roles/limits.h"
#include "roles/tokenizer.h"

namespace {

void require(bool condition)
{
	if (!condition)
		__builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const std::string_view line(reinterpret_cast<const char*>(data), size);
	auto words = jead::tokenize_words(line);

	if (!words) {
		require(words.error().column >= 1);
		require(words.error().column <= line.size() + 1);
		require(!words.error().message.empty());
		return 0;
	}

	require(line.size() <= jead::limits::kMaxCommandLineBytes);
	require(words->size() <= jead::limits::kMaxCommandWords);
	std::size_t previous_column = 0;
	for (const auto& word : *words) {
		require(word.column > previous_column);
		require(word.column <= line.size());
		previous_column = word.column;
		for (const char c : word.text) {
			const auto b = static_cast<unsigned char>(c);
			require(b >= 0x20 && b != 0x7F);
		}
	}

	auto plain = jead::tokenize(line);
	require(plain.has_value() && plain->size() == words->size());
	(void)jead::caret_line(line, previous_column);
	return 0;
}
