// libFuzzer target for the transcript reader, the verifier and the
// renderers of jea-replay (show, list, play, export, grep): any byte string
// must parse, verify and render without a crash, a sanitizer report or
// unescaped terminal controls.
//
// Not built by CMake. Build and run from the repository root:
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     fuzz/transcript_reader_fuzz.cc \
//     $(ls transcripts/*.cc | grep -v jea_replay_main.cc) common/*.cc \
//     -lcrypto -o /tmp/transcript_reader_fuzz
//   /tmp/transcript_reader_fuzz -max_total_time=30 -max_len=65536 \
//     /tmp/transcript-corpus fuzz/corpus/transcript
//
// Put new inputs in a scratch corpus directory (the first one named), so
// the seed transcripts in fuzz/corpus/transcript stay as written by jead.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/escape.h"
#include "transcripts/reader.h"
#include "transcripts/render.h"
#include "transcripts/replay_tools.h"
#include "transcripts/verify.h"

namespace {

// Small caps so that the limit paths are reached with short inputs.
jead::ReadLimits fuzz_limits()
{
	jead::ReadLimits limits;
	limits.max_line_bytes = 16 * 1024;
	limits.max_records = 200;
	return limits;
}

// Aborts unless rendered text is valid UTF-8 without C0 controls other
// than \n and \t, DEL or C1 controls (U+0080 to U+009F, encoded C2 80 to
// C2 9F). Valid UTF-8 rules out a raw 0x9b byte, except as a continuation
// byte, which a UTF-8 terminal does not read as CSI.
void check_terminal_safe(const std::string& text)
{
	if (!jead::is_valid_utf8(text))
		std::abort();
	for (std::size_t i = 0; i < text.size(); ++i) {
		const auto b = static_cast<unsigned char>(text[i]);
		if (b == '\n' || b == '\t')
			continue;
		const bool c1 = b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0;
		if (b < 0x20 || b == 0x7F || c1)
			std::abort();
	}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const std::string_view content(reinterpret_cast<const char*>(data), size);
	const jead::ReadLimits limits = fuzz_limits();

	const jead::VerifyResult integrity = jead::verify_transcript(content, "fuzz", limits);
	const jead::PartialTranscript partial = jead::parse_transcript_prefix(content, "fuzz", limits);

	// The strict parse must agree with the prefix parse.
	auto strict = jead::parse_transcript(content, "fuzz", limits);
	if (strict.has_value() == partial.error.has_value())
		std::abort();

	check_terminal_safe(jead::render_timeline(partial.transcript, integrity));
	check_terminal_safe(jead::describe_verify_result(integrity));
	const jead::SessionSummary summary = jead::summarize_session(partial.transcript, integrity);
	check_terminal_safe(jead::render_session_table({summary}));
	check_terminal_safe(jead::render_session_json({summary}));

	std::string played;
	for (const auto& frame : jead::playback_frames(partial.transcript, false))
		played += frame.text;
	check_terminal_safe(played);
	check_terminal_safe(jead::export_asciicast(partial.transcript, false));
	check_terminal_safe(jead::export_session_json(partial.transcript, integrity));
	(void)jead::matches_filter(partial.transcript, jead::SessionFilter{});
	for (const auto& hit : jead::grep_transcript(partial.transcript, "a"))
		check_terminal_safe(hit.field);
	return 0;
}
