#include "transcripts/verify.h"

#include <set>
#include <variant>

#include "transcripts/signing.h"
#include "transcripts/terminal_text.h"

namespace jead {

namespace {

// Checks one parsed record against the state of the chain so far.
class ChainChecker {
public:
	// Returns an empty string when `record` continues the chain, else why not.
	// On failure bad_seq() is the first seq that does not verify.
	std::string check(const TranscriptRecord& record)
	{
		const std::uint64_t expected = next_seq_;
		bad_seq_ = expected;
		blames_previous_ = false;

		// Only the checkpoint that signs the end record may follow it.
		const bool is_checkpoint = std::holds_alternative<CheckpointRecord>(record.body);
		if (ended_ && (!is_checkpoint || end_checkpointed_))
			return "record after the end record";
		if (record.seq != expected)
			return "expected seq " + std::to_string(expected) + ", found seq " + std::to_string(record.seq) +
			       " (a record is missing, repeated or out of order)";

		const bool is_header = std::holds_alternative<HeaderRecord>(record.body);
		if (expected == 0 && !is_header)
			return "the first record is " + std::string(record_type_name(record.body)) + ", not header";
		if (expected > 0 && is_header)
			return "a second header record";

		if (expected > 0 && record.prev != last_hash_) {
			// Either the previous line changed after this prev was written,
			// or this prev changed. The earlier record is reported because
			// records before it still verify against it.
			bad_seq_ = expected - 1;
			blames_previous_ = true;
			return "the SHA-256 of seq " + std::to_string(expected - 1) + " does not match the prev of seq " +
			       std::to_string(expected) + " (one of the two records was altered)";
		}
		if (record.t_ms < last_t_)
			return "t decreases from " + std::to_string(last_t_) + " to " + std::to_string(record.t_ms);
		if (std::string why = check_size_limit(record.body); !why.empty())
			return why;

		if (const auto* end = std::get_if<EndRecord>(&record.body)) {
			ended_ = true;
			end_reason_ = end->reason;
			end_hash_ = record.hash;
		}
		if (ended_ && is_checkpoint)
			end_checkpointed_ = true;
		last_hash_ = record.hash;
		last_t_ = record.t_ms;
		++next_seq_;
		return {};
	}

	std::uint64_t bad_seq() const { return bad_seq_; }
	// True when the failure blames the record before the one checked.
	bool blames_previous() const { return blames_previous_; }
	bool ended() const { return ended_; }
	// True when a checkpoint directly follows the end record.
	bool end_checkpointed() const { return end_checkpointed_; }
	const std::string& end_reason() const { return end_reason_; }
	const std::string& end_hash() const { return end_hash_; }
	bool truncated() const { return truncated_; }

private:
	// After a truncated record the writer keeps data only as digests.
	std::string check_size_limit(const RecordBody& body)
	{
		const bool is_truncated = std::holds_alternative<TruncatedRecord>(body);
		const bool is_data = std::holds_alternative<OutputRecord>(body) || std::holds_alternative<StdinRecord>(body) ||
		                     std::holds_alternative<TailRecord>(body) || std::holds_alternative<KeystrokesRecord>(body);
		if (truncated_ && is_truncated)
			return "a second truncated record";
		if (truncated_ && is_data)
			return std::string(record_type_name(body)) + " record after the truncated record";
		truncated_ = truncated_ || is_truncated;
		return {};
	}

	std::uint64_t next_seq_ = 0;
	std::uint64_t bad_seq_ = 0;
	std::uint64_t last_t_ = 0;
	std::string last_hash_;
	std::string end_reason_;
	std::string end_hash_;
	bool ended_ = false;
	bool truncated_ = false;
	bool end_checkpointed_ = false;
	bool blames_previous_ = false;
};

void mark_tampered(VerifyResult& result, std::uint64_t seq, std::size_t line, std::string detail)
{
	result.status = VerifyStatus::tampered;
	result.bad_seq = seq;
	result.bad_line = line;
	result.detail = std::move(detail);
	// A prev mismatch blames the record before the one just read, which had
	// been counted as verified.
	if (result.verified_through && *result.verified_through >= seq) {
		result.verified_through = seq == 0 ? std::nullopt : std::optional<std::uint64_t>(seq - 1);
		result.records = static_cast<std::size_t>(seq);
	}
}

// Removes the "<name>:<line>: " prefix of a parser error, because the
// verify result names the file and line separately.
std::string strip_location(const std::string& message, const std::string& name, std::size_t line)
{
	const std::string prefix = name + ":" + std::to_string(line) + ": ";
	if (message.compare(0, prefix.size(), prefix) == 0)
		return message.substr(prefix.size());
	return message;
}

}  // namespace

std::string_view verify_status_name(VerifyStatus status)
{
	switch (status) {
	case VerifyStatus::ok: return "ok";
	case VerifyStatus::unsealed: return "unsealed";
	case VerifyStatus::truncated: return "truncated";
	case VerifyStatus::tampered: return "tampered";
	case VerifyStatus::unreadable: return "unreadable";
	}
	return "unknown";
}

// Returns an empty string when the checkpoint verifies with `key`, else why not.
std::string check_signature(const TranscriptRecord& record, const CheckpointRecord& checkpoint,
                            const TranscriptVerifyKey& key)
{
	if (checkpoint.key_fingerprint != key.fingerprint())
		return "line " + std::to_string(record.line_number) + ": checkpoint signed by key " +
		       escape_for_terminal(checkpoint.key_fingerprint, TextLayout::single_line) + ", not by the given key " +
		       key.fingerprint();
	if (!key.verify(checkpoint_message(record.prev), checkpoint.signature))
		return "line " + std::to_string(record.line_number) + ": the checkpoint signature does not verify";
	return {};
}

VerifyResult verify_transcript(std::string_view content, std::string name, const ReadLimits& limits,
                               const TranscriptVerifyKey* key)
{
	VerifyResult result;
	result.name = name;
	result.signatures_checked = key != nullptr;
	TranscriptParser parser(content, std::move(name), limits);
	ChainChecker chain;

	// next() consumes one line per call and fails past max_records.
	for (;;) {
		auto record = parser.next();
		if (!record) {
			if (record.error().code == Errc::limit) {
				result.status = VerifyStatus::unreadable;
				result.detail = record.error().message;
			} else {
				mark_tampered(result, result.records, parser.line_number(),
				              strip_location(record.error().message, result.name, parser.line_number()));
			}
			return result;
		}
		if (!*record)
			break;

		const TranscriptRecord& r = **record;
		if (std::string why = chain.check(r); !why.empty()) {
			const std::size_t line = chain.blames_previous() ? r.line_number - 1 : r.line_number;
			mark_tampered(result, chain.bad_seq(), line, "line " + std::to_string(r.line_number) + ": " + why);
			return result;
		}
		if (const auto* checkpoint = std::get_if<CheckpointRecord>(&r.body)) {
			result.checkpoints += 1;
			if (key != nullptr) {
				if (std::string why = check_signature(r, *checkpoint, *key); !why.empty()) {
					mark_tampered(result, r.seq, r.line_number, why);
					return result;
				}
				result.signed_through = r.seq - 1;
			}
		}
		if (r.seq == 0)
			result.header_prev = r.prev;
		result.records += 1;
		result.verified_through = r.seq;
		result.last_hash = r.hash;
	}
	result.end_reason = chain.end_reason();
	result.end_hash = chain.end_hash();
	result.truncated = chain.truncated();

	const std::size_t trailing = parser.trailing_bytes().size();
	if (trailing > 0 && chain.ended()) {
		mark_tampered(result, result.records, parser.line_number() + 1,
		              std::to_string(trailing) + " bytes after the end record");
		return result;
	}
	if (trailing > 0) {
		result.status = VerifyStatus::truncated;
		result.detail = "the last " + std::to_string(trailing) + " bytes are a record cut short (no newline)";
		return result;
	}
	if (result.records == 0) {
		result.status = VerifyStatus::truncated;
		result.detail = "the file contains no record";
		return result;
	}
	if (!chain.ended()) {
		result.status = VerifyStatus::unsealed;
		result.detail = "no end record: the session is still running, or jead stopped before ending it";
		return result;
	}
	if (key != nullptr && !chain.end_checkpointed()) {
		result.status = VerifyStatus::unsealed;
		result.detail = "the end record is not signed: no checkpoint follows it";
		return result;
	}
	result.status = VerifyStatus::ok;
	return result;
}

VerifyResult verify_transcript_file(const std::filesystem::path& path, const ReadLimits& limits,
                                    const TranscriptVerifyKey* key)
{
	auto content = read_transcript_bytes(path, limits);
	if (!content) {
		VerifyResult result;
		result.name = path.string();
		result.status = VerifyStatus::unreadable;
		result.detail = content.error().message;
		return result;
	}
	return verify_transcript(*content, path.string(), limits, key);
}

std::string describe_verify_result(const VerifyResult& result)
{
	const std::string name = display_token(result.name);
	std::string through = result.verified_through
		? "verified through seq " + std::to_string(*result.verified_through)
		: "no record verified";
	if (result.signatures_checked)
		through += result.signed_through ? ", signed through seq " + std::to_string(*result.signed_through)
		                                 : ", no valid signature";
	const std::string& detail = result.detail;

	switch (result.status) {
	case VerifyStatus::ok:
		if (result.signatures_checked)
			return name + ": ok (" + std::to_string(result.records) + " records, end: " + result.end_reason +
			       ", signed through seq " + std::to_string(result.signed_through.value_or(0)) + ")";
		return name + ": ok (" + std::to_string(result.records) + " records, end: " + result.end_reason + ")";
	case VerifyStatus::unsealed:
		return name + ": unsealed (" + through + "): " + detail;
	case VerifyStatus::truncated:
		return name + ": truncated (" + through + "): " + detail;
	case VerifyStatus::tampered:
		return name + ": tampered at seq " + std::to_string(result.bad_seq.value_or(0)) + " (line " +
		       std::to_string(result.bad_line) + ", " + through + "): " + detail;
	case VerifyStatus::unreadable:
		// Read errors contain the path, which may contain any byte.
		return name + ": unreadable: " + escape_for_terminal(detail, TextLayout::single_line);
	}
	return name + ": unknown status";
}

std::vector<std::string> check_session_links(const std::vector<VerifyResult>& results)
{
	std::set<std::string> end_hashes;
	// The end hash is what FORMAT.md specifies. The last hash (the signed
	// checkpoint after the end) is what TranscriptWriter::last_hash()
	// returned to earlier servers, so both link.
	for (const auto& r : results) {
		if (!r.end_reason.empty()) {
			end_hashes.insert(r.end_hash);
			end_hashes.insert(r.last_hash);
		}
	}

	std::vector<const VerifyResult*> missing;
	for (const auto& r : results) {
		if (r.header_prev.empty() || r.header_prev == transcript::kZeroHash)
			continue;
		if (end_hashes.count(r.header_prev) == 0)
			missing.push_back(&r);
	}

	std::vector<std::string> messages;
	if (missing.size() <= 1)
		return messages;
	for (const VerifyResult* r : missing)
		messages.push_back(display_token(r->name) + ": the previous session (end hash " +
		                   r->header_prev + ") is not in this directory");
	return messages;
}

}  // namespace jead
