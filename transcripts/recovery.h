// Recovery at server start: sealing the transcripts of sessions that ended
// without an end record (a crash, kill -9 or power loss), and finding the
// end hash that links the next session to the last one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "transcripts/writer.h"

namespace jead {

struct SealOutcome {
	std::filesystem::path path;
	bool sealed = false;   // an end record or its checkpoint was appended
	std::string message;   // one line for the log; untrusted parts escaped
};

// Seals every *.jsonl transcript in `dir` that has no end record, unless a
// live writer holds its lock. A last line cut short is moved to
// "<file>.cut" (created with O_EXCL, mode 0600, synced) and cut from the
// transcript, and the end record gives its size, SHA-256 and file name.
// Then an `end` record with reason "abnormal" is appended, chained and,
// with options.signing_key, signed, saying what was known: the last seq
// and whether a process was running, with its pid. A transcript whose end
// has no checkpoint gets the checkpoint when options.signing_key is set.
// Transcripts that are tampered, unreadable or without a complete header
// are left as they are and reported. Returns one outcome per transcript
// acted on or left damaged; the error is for a directory that cannot be
// listed.
Result<std::vector<SealOutcome>> seal_abandoned_transcripts(const std::filesystem::path& dir,
                                                            const TranscriptOptions& options);

// Returns the hex SHA-256 of the newest end record line in `dir`, for
// TranscriptOptions::previous_end_hash of the next session, or an empty
// string when no transcript there has an end. Newest means the latest
// header `time` plus the end record's `t`. Transcripts that do not verify
// are skipped.
Result<std::string> newest_end_hash(const std::filesystem::path& dir);

}  // namespace jead
