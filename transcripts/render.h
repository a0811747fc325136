// Text for auditors: the timeline of one transcript (`jea-replay show`) and
// the table of sessions in a directory (`jea-replay list`). Every recorded
// string is escaped with terminal_text.h before it is returned, except
// output data when RenderOptions::raw_output is set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "transcripts/reader.h"
#include "transcripts/verify.h"

namespace jead {

struct RenderOptions {
	// Copies output data to the result byte for byte. The terminal then
	// interprets any escape sequence the recorded program printed.
	bool raw_output = false;
};

// Renders the header (who, from where, which certificate) and then every
// record in order. `integrity` is printed first so a tampered or unsealed
// transcript is flagged before its content. Command lines, decisions and
// argv come from their own records, never from output bytes.
std::string render_timeline(const Transcript& transcript, const VerifyResult& integrity,
                            const RenderOptions& options = {});

// One row of `jea-replay list`. Strings are the recorded bytes, not escaped.
struct SessionSummary {
	std::string file;
	bool has_header = false;
	std::string session_id;
	std::string start_time;  // the header's `time`
	std::string role;
	bool break_glass = false;
	std::string key_id;
	std::uint64_t serial = 0;
	std::string client_address;
	int client_port = 0;
	std::size_t commands = 0;  // decision records
	std::size_t denied = 0;    // decision records with allowed = false
	std::string end_reason;    // empty without an end record
	VerifyStatus integrity = VerifyStatus::unreadable;
	std::string integrity_detail;
};

SessionSummary summarize_session(const Transcript& transcript, const VerifyResult& integrity);

// Returns an aligned text table with one header line and one row per
// session, every cell escaped.
std::string render_session_table(const std::vector<SessionSummary>& sessions);

// Returns a JSON array of objects, one per session. Untrusted strings are
// encoded as in transcripts ({"b64": ...} for invalid UTF-8), and all
// non-ASCII characters are written as \u escapes, so the text is safe to
// print.
std::string render_session_json(const std::vector<SessionSummary>& sessions);

}  // namespace jead
