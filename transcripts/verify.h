// Verification of transcripts: seq numbering, the SHA-256 chain through
// `prev`, the record order rules, a final `end` record and, given a public
// key, the signatures of checkpoint records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transcripts/reader.h"

namespace jead {

enum class VerifyStatus {
	ok,          // chain intact and sealed by an end record (signed, when a key is given)
	unsealed,    // chain intact, but no end record (or, with a key, no signed end)
	truncated,   // chain intact up to a last line cut short (no newline)
	tampered,    // a record does not parse, or seq, prev or the record order is wrong
	unreadable,  // the file cannot be read, or exceeds a ReadLimits cap
};

std::string_view verify_status_name(VerifyStatus status);

struct VerifyResult {
	std::string name;
	VerifyStatus status = VerifyStatus::unreadable;
	std::size_t records = 0;                    // records that verified
	std::optional<std::uint64_t> verified_through;  // seq of the last record that verified
	std::optional<std::uint64_t> bad_seq;       // tampered: the first seq that fails
	std::size_t bad_line = 0;                   // tampered: the 1-based line of bad_seq, or 0
	std::string detail;                         // why, for every status except ok; untrusted parts escaped
	std::string header_prev;                    // the header's prev: zeros, or the predecessor's end hash
	std::string last_hash;                      // SHA-256 of the last record that verified
	std::string end_reason;                     // set when an end record verified
	std::string end_hash;                       // SHA-256 of the end record line, when one verified
	bool truncated = false;                     // a truncated record verified: data past max_bytes is digests only
	std::size_t checkpoints = 0;                // checkpoint records that verified
	bool signatures_checked = false;            // a public key was given
	std::optional<std::uint64_t> signed_through;  // seq covered by the last valid checkpoint
};

class TranscriptVerifyKey;

// Verifies an in-memory transcript, using `name` in messages. With a
// `key`, every checkpoint must carry a valid signature by that key, and
// status ok also requires a checkpoint right after the end record. Without
// one, checkpoints are checked as chain links only.
VerifyResult verify_transcript(std::string_view content, std::string name, const ReadLimits& limits = {},
                               const TranscriptVerifyKey* key = nullptr);

// Reads and verifies one file.
VerifyResult verify_transcript_file(const std::filesystem::path& path, const ReadLimits& limits = {},
                                    const TranscriptVerifyKey* key = nullptr);

// Returns one line such as "FILE: ok (12 records, end: client-closed)" or
// "FILE: tampered at seq 4 (line 5): ...". Untrusted parts are escaped.
std::string describe_verify_result(const VerifyResult& result);

// Checks the links between the transcripts of one directory. A header whose
// prev is not zero names the end hash of an earlier session. The oldest
// transcript kept may point to one already deleted, so a single missing
// predecessor is accepted. When two or more are missing, at least one
// transcript in the chain was deleted or replaced, and this returns one
// message for each transcript whose predecessor is missing.
std::vector<std::string> check_session_links(const std::vector<VerifyResult>& results);

}  // namespace jead
