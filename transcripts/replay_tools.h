// The jea-replay commands beyond show and verify: filters for `list`, the
// `grep` search, the `play` frames and the `export` formats (asciicast v2
// and one JSON object per session). Recorded strings are neutralised with
// terminal_text.h or JSON-escaped to ASCII, except where a raw option is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "transcripts/reader.h"
#include "transcripts/verify.h"

namespace jead {

// Conditions of `jea-replay list`; every set one must hold.
struct SessionFilter {
	std::optional<std::int64_t> since_ms;  // header time >= this, ms since the epoch
	std::optional<std::int64_t> until_ms;  // header time < this
	std::optional<std::string> role;
	std::optional<std::string> principal;  // one of the certificate's principals
	std::optional<std::string> key_id;
	std::optional<std::uint64_t> serial;
	std::optional<std::string> verb;       // a decision for this verb, allowed or not
	// "denied": a denied decision; "failed": a process exit other than
	// status 0; "expired" and "revoked": the end reason.
	std::optional<std::string> outcome;
	std::optional<std::string> client_address;
	bool break_glass_only = false;
};

bool matches_filter(const Transcript& transcript, const SessionFilter& filter);

struct GrepHit {
	std::uint64_t seq = 0;
	std::string field;  // "input", "verb", "argument NAME", "argv"
	std::string value;  // the recorded bytes that matched, not escaped
};

// Returns every input line, decision verb, argument value and argv element
// that contains `pattern` as a plain byte substring.
std::vector<GrepHit> grep_transcript(const Transcript& transcript, std::string_view pattern);

struct PlayFrame {
	std::chrono::milliseconds delay{0};  // recorded time since the previous frame
	std::string text;                    // what to print
};

// Returns the output of a session as timed frames: output, stdin echo and
// tail data, with one-line notes for commands, denials, exits, skipped
// bytes, digests and the end. Data is neutralised unless `raw`, and notes
// always are.
std::vector<PlayFrame> playback_frames(const Transcript& transcript, bool raw);

// Returns an asciicast v2 file: a header line, then [time, "o", data] for
// output and [time, "i", data] for keystrokes. Data is neutralised, with
// \n written as \r\n, unless `raw` is set. Raw bytes that are not UTF-8
// become U+FFFD, because asciicast data is a JSON string.
std::string export_asciicast(const Transcript& transcript, bool raw);

// Returns one line of JSON describing the session for a SIEM: header
// fields, integrity, every command with its decision, exit and recording,
// and the end. Bytes fields are encoded as in transcripts and the text is
// ASCII only.
std::string export_session_json(const Transcript& transcript, const VerifyResult& integrity);

}  // namespace jead
