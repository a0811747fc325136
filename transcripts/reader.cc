#include "transcripts/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <iterator>
#include <set>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/escape.h"

namespace jead {

namespace {

using json = nlohmann::ordered_json;

// Reads the fields of one JSON object, checking each type, and remembers
// which keys were read so that finish() can reject unknown ones.
class FieldReader {
public:
	explicit FieldReader(const json& object) : object_(object) {}

	Result<const json*> find(std::string_view key)
	{
		const auto it = object_.find(std::string(key));
		if (it == object_.end())
			return fail(Errc::invalid, "missing field \"" + std::string(key) + "\"");
		used_.insert(std::string(key));
		return &*it;
	}

	bool has(std::string_view key) const { return object_.contains(std::string(key)); }

	Result<std::uint64_t> get_uint(std::string_view key)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		if (!(*value)->is_number_unsigned())
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" must be a non-negative integer");
		return (*value)->get<std::uint64_t>();
	}

	Result<std::int64_t> get_int(std::string_view key, std::int64_t min, std::int64_t max)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		const json& v = **value;
		bool in_range = false;
		std::int64_t result = 0;
		if (v.is_number_unsigned()) {
			const auto u = v.get<std::uint64_t>();
			in_range = u <= static_cast<std::uint64_t>(max);
			result = static_cast<std::int64_t>(u);
		} else if (v.is_number_integer()) {
			result = v.get<std::int64_t>();
			in_range = result >= min && result <= max;
		} else {
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" must be an integer");
		}
		if (!in_range)
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" is out of range");
		return result;
	}

	Result<int> get_int32(std::string_view key)
	{
		auto value = get_int(key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
		if (!value)
			return tl::unexpected(value.error());
		return static_cast<int>(*value);
	}

	Result<bool> get_bool(std::string_view key)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		if (!(*value)->is_boolean())
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" must be true or false");
		return (*value)->get<bool>();
	}

	// A plain JSON string, for fields the writer never base64-encodes.
	Result<std::string> get_string(std::string_view key)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		if (!(*value)->is_string())
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" must be a string");
		return (*value)->get<std::string>();
	}

	// A string or {"b64": ...}, for untrusted bytes.
	Result<std::string> get_bytes(std::string_view key)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		auto decoded = transcript::decode_bytes(**value);
		if (!decoded)
			return fail(Errc::invalid, "field \"" + std::string(key) + "\": " + decoded.error().message);
		return decoded;
	}

	Result<std::vector<std::string>> get_bytes_list(std::string_view key)
	{
		auto value = find(key);
		if (!value)
			return tl::unexpected(value.error());
		if (!(*value)->is_array())
			return fail(Errc::invalid, "field \"" + std::string(key) + "\" must be an array");
		std::vector<std::string> items;
		items.reserve((*value)->size());
		for (const auto& item : **value) {
			auto decoded = transcript::decode_bytes(item);
			if (!decoded)
				return fail(Errc::invalid, "field \"" + std::string(key) + "\" item " +
				                               std::to_string(items.size()) + ": " + decoded.error().message);
			items.push_back(std::move(*decoded));
		}
		return items;
	}

	// Rejects any key that no getter read.
	Result<void> finish() const
	{
		for (const auto& [key, value] : object_.items()) {
			if (used_.count(key) == 0)
				return fail(Errc::invalid, "unknown field " + escape_untrusted(key, 64));
		}
		return {};
	}

private:
	const json& object_;
	std::set<std::string> used_;
};

// Unwraps a Result into `target` or returns its error from the enclosing
// function. Keeps the field-by-field parsers below readable.
#define JEAD_ASSIGN_OR_RETURN(target, expression)            \
	do {                                                     \
		auto jead_result_ = (expression);                    \
		if (!jead_result_)                                   \
			return tl::unexpected(jead_result_.error());     \
		target = std::move(*jead_result_);                   \
	} while (false)

Result<RecordBody> parse_header(FieldReader& f)
{
	HeaderRecord r;
	std::int64_t format = 0;
	JEAD_ASSIGN_OR_RETURN(format, f.get_int("format", 0, std::numeric_limits<int>::max()));
	if (format < transcript::kOldestFormatVersion || format > transcript::kFormatVersion)
		return fail(Errc::invalid, "unsupported format version " + std::to_string(format) +
		                               " (this reader supports versions " +
		                               std::to_string(transcript::kOldestFormatVersion) + " to " +
		                               std::to_string(transcript::kFormatVersion) + ")");
	r.format = static_cast<int>(format);

	TranscriptHeader& h = r.header;
	JEAD_ASSIGN_OR_RETURN(r.time, f.get_string("time"));
	JEAD_ASSIGN_OR_RETURN(h.session_id, f.get_bytes("session_id"));
	JEAD_ASSIGN_OR_RETURN(h.host, f.get_bytes("host"));
	JEAD_ASSIGN_OR_RETURN(h.jead_version, f.get_bytes("jead_version"));
	JEAD_ASSIGN_OR_RETURN(h.start_time, f.get_int("start_time", std::numeric_limits<std::int64_t>::min(),
	                                              std::numeric_limits<std::int64_t>::max()));
	JEAD_ASSIGN_OR_RETURN(h.client_address, f.get_bytes("client_address"));
	JEAD_ASSIGN_OR_RETURN(h.client_port, f.get_int32("client_port"));
	JEAD_ASSIGN_OR_RETURN(h.role, f.get_bytes("role"));
	JEAD_ASSIGN_OR_RETURN(h.key_id, f.get_bytes("key_id"));
	JEAD_ASSIGN_OR_RETURN(h.serial, f.get_uint("serial"));
	JEAD_ASSIGN_OR_RETURN(h.principals, f.get_bytes_list("principals"));
	JEAD_ASSIGN_OR_RETURN(h.ca_fingerprint, f.get_bytes("ca_fingerprint"));
	JEAD_ASSIGN_OR_RETURN(h.user_fingerprint, f.get_bytes("user_fingerprint"));
	JEAD_ASSIGN_OR_RETURN(h.valid_after, f.get_uint("valid_after"));
	JEAD_ASSIGN_OR_RETURN(h.valid_before, f.get_uint("valid_before"));
	JEAD_ASSIGN_OR_RETURN(h.mode, f.get_bytes("mode"));
	JEAD_ASSIGN_OR_RETURN(h.pty, f.get_bool("pty"));
	JEAD_ASSIGN_OR_RETURN(h.policy_version, f.get_bytes("policy_version"));
	if (r.format >= 3) {
		JEAD_ASSIGN_OR_RETURN(h.break_glass, f.get_bool("break_glass"));
		JEAD_ASSIGN_OR_RETURN(h.columns, f.get_int32("columns"));
		JEAD_ASSIGN_OR_RETURN(h.rows, f.get_int32("rows"));
	}
	return r;
}

Result<RecordBody> parse_decision(FieldReader& f)
{
	DecisionRecord r;
	JEAD_ASSIGN_OR_RETURN(r.allowed, f.get_bool("allowed"));
	JEAD_ASSIGN_OR_RETURN(r.reason, f.get_bytes("reason"));
	JEAD_ASSIGN_OR_RETURN(r.verb, f.get_bytes("verb"));

	const json* arguments = nullptr;
	JEAD_ASSIGN_OR_RETURN(arguments, f.find("arguments"));
	if (!arguments->is_array())
		return fail(Errc::invalid, "field \"arguments\" must be an array");
	for (const auto& item : *arguments) {
		const std::string position = "field \"arguments\" item " + std::to_string(r.arguments.size());
		if (!item.is_object())
			return fail(Errc::invalid, position + " must be an object {\"name\", \"value\"}");
		FieldReader argument(item);
		auto name = argument.get_bytes("name");
		auto value = argument.get_bytes("value");
		auto complete = argument.finish();
		if (!name)
			return fail(Errc::invalid, position + ": " + name.error().message);
		if (!value)
			return fail(Errc::invalid, position + ": " + value.error().message);
		if (!complete)
			return fail(Errc::invalid, position + ": " + complete.error().message);
		r.arguments.emplace_back(std::move(*name), std::move(*value));
	}

	JEAD_ASSIGN_OR_RETURN(r.argv, f.get_bytes_list("argv"));
	JEAD_ASSIGN_OR_RETURN(r.run_as, f.get_bytes("run_as"));
	JEAD_ASSIGN_OR_RETURN(r.policy_version, f.get_bytes("policy_version"));
	return r;
}

Result<RecordBody> parse_output(FieldReader& f)
{
	OutputRecord r;
	std::string stream;
	JEAD_ASSIGN_OR_RETURN(stream, f.get_string("stream"));
	if (stream == "stdout")
		r.stream = OutputStream::stdout_;
	else if (stream == "stderr")
		r.stream = OutputStream::stderr_;
	else
		return fail(Errc::invalid, "field \"stream\" must be \"stdout\" or \"stderr\"");
	JEAD_ASSIGN_OR_RETURN(r.data, f.get_bytes("data"));
	return r;
}

Result<RecordBody> parse_process_exit(FieldReader& f)
{
	ProcessExitRecord r;
	const bool has_status = f.has("status");
	const bool has_signal = f.has("signal");
	if (has_status == has_signal)
		return fail(Errc::invalid, "a process_exit record needs exactly one of \"status\" and \"signal\"");
	if (has_status)
		JEAD_ASSIGN_OR_RETURN(r.status, f.get_int32("status"));
	else
		JEAD_ASSIGN_OR_RETURN(r.signal, f.get_int32("signal"));
	JEAD_ASSIGN_OR_RETURN(r.duration_ms, f.get_int("duration_ms", std::numeric_limits<std::int64_t>::min(),
	                                               std::numeric_limits<std::int64_t>::max()));
	JEAD_ASSIGN_OR_RETURN(r.bytes_out, f.get_uint("bytes_out"));
	JEAD_ASSIGN_OR_RETURN(r.note, f.get_bytes("note"));
	return r;
}

// The fields seal_abandoned_transcripts() adds to an abnormal end.
Result<AbandonedSession> parse_recovery(FieldReader& f)
{
	AbandonedSession r;
	bool running = false;
	JEAD_ASSIGN_OR_RETURN(r.recovered_at, f.get_string("recovered_at"));
	JEAD_ASSIGN_OR_RETURN(r.last_seq, f.get_uint("last_seq"));
	JEAD_ASSIGN_OR_RETURN(running, f.get_bool("process_running"));
	if (running != f.has("pid"))
		return fail(Errc::invalid, "field \"pid\" must be present exactly when \"process_running\" is true");
	if (running)
		JEAD_ASSIGN_OR_RETURN(r.running_pid, f.get_int32("pid"));
	JEAD_ASSIGN_OR_RETURN(r.cut_bytes, f.get_uint("cut_bytes"));
	const bool cut = r.cut_bytes > 0;
	if (cut != f.has("cut_sha256") || cut != f.has("cut_file"))
		return fail(Errc::invalid, "fields \"cut_sha256\" and \"cut_file\" must be present exactly when "
		                           "\"cut_bytes\" is above 0");
	if (cut) {
		JEAD_ASSIGN_OR_RETURN(r.cut_sha256, f.get_string("cut_sha256"));
		if (!transcript::is_sha256_hex(r.cut_sha256))
			return fail(Errc::invalid, "field \"cut_sha256\" must be 64 lowercase hex digits");
		JEAD_ASSIGN_OR_RETURN(r.cut_file, f.get_bytes("cut_file"));
	}
	return r;
}

Result<RecordBody> parse_end(FieldReader& f, int format)
{
	EndRecord r;
	JEAD_ASSIGN_OR_RETURN(r.reason, f.get_string("reason"));
	if (!transcript::is_end_reason(r.reason))
		return fail(Errc::invalid, "unknown end reason " + escape_untrusted(r.reason, 64));
	if (format >= 2 && f.has("recovered_at")) {
		if (r.reason != "abnormal")
			return fail(Errc::invalid, "recovery fields need reason \"abnormal\"");
		JEAD_ASSIGN_OR_RETURN(r.recovery, parse_recovery(f));
	}
	return r;
}

Result<transcript::DataStream> get_stream(FieldReader& f, bool output_only)
{
	std::string name;
	JEAD_ASSIGN_OR_RETURN(name, f.get_string("stream"));
	transcript::DataStream stream{};
	if (!transcript::parse_data_stream(name, stream) || (output_only && stream == transcript::DataStream::keystrokes))
		return fail(Errc::invalid, "unknown stream " + escape_untrusted(name, 64));
	return stream;
}

Result<StreamRecording> get_recording(FieldReader& f, const std::string& prefix)
{
	StreamRecording r;
	std::string mode;
	JEAD_ASSIGN_OR_RETURN(mode, f.get_string(prefix));
	if (!transcript::parse_recording_mode(mode, r.mode))
		return fail(Errc::invalid, "unknown recording mode " + escape_untrusted(mode, 64));
	JEAD_ASSIGN_OR_RETURN(r.head_bytes, f.get_uint(prefix + "_head"));
	JEAD_ASSIGN_OR_RETURN(r.tail_bytes, f.get_uint(prefix + "_tail"));
	return r;
}

// Record types added in format 2.
Result<RecordBody> parse_format2_body(std::string_view type, FieldReader& f)
{
	if (type == "recording") {
		RecordingRecord r;
		JEAD_ASSIGN_OR_RETURN(r.output, get_recording(f, "output"));
		JEAD_ASSIGN_OR_RETURN(r.input, get_recording(f, "stdin"));
		return r;
	}
	if (type == "stdin") {
		StdinRecord r;
		JEAD_ASSIGN_OR_RETURN(r.data, f.get_bytes("data"));
		return r;
	}
	if (type == "tail") {
		TailRecord r;
		JEAD_ASSIGN_OR_RETURN(r.stream, get_stream(f, true));
		JEAD_ASSIGN_OR_RETURN(r.skipped, f.get_uint("skipped"));
		JEAD_ASSIGN_OR_RETURN(r.data, f.get_bytes("data"));
		return r;
	}
	if (type == "digest") {
		DigestRecord r;
		JEAD_ASSIGN_OR_RETURN(r.stream, get_stream(f, false));
		JEAD_ASSIGN_OR_RETURN(r.offset, f.get_uint("offset"));
		JEAD_ASSIGN_OR_RETURN(r.bytes, f.get_uint("bytes"));
		JEAD_ASSIGN_OR_RETURN(r.sha256, f.get_string("sha256"));
		if (!transcript::is_sha256_hex(r.sha256))
			return fail(Errc::invalid, "field \"sha256\" must be 64 lowercase hex digits");
		return r;
	}
	if (type == "truncated") {
		TruncatedRecord r;
		JEAD_ASSIGN_OR_RETURN(r.limit, f.get_uint("limit"));
		JEAD_ASSIGN_OR_RETURN(r.size, f.get_uint("size"));
		JEAD_ASSIGN_OR_RETURN(r.record, f.get_string("record"));
		if (r.record != "output" && r.record != "stdin" && r.record != "tail" && r.record != "keystrokes")
			return fail(Errc::invalid, "field \"record\" names no data record: " + escape_untrusted(r.record, 64));
		JEAD_ASSIGN_OR_RETURN(r.stream, get_stream(f, false));
		return r;
	}
	return fail(Errc::invalid, "unknown record type " + escape_untrusted(type, 64));
}

Result<RecordBody> parse_checkpoint(FieldReader& f)
{
	CheckpointRecord r;
	std::string encoded;
	JEAD_ASSIGN_OR_RETURN(r.key_fingerprint, f.get_string("key"));
	JEAD_ASSIGN_OR_RETURN(encoded, f.get_string("signature"));
	auto signature = base64_decode(encoded);
	if (!signature || signature->size() != 64)
		return fail(Errc::invalid, "field \"signature\" must be 64 bytes in base64");
	r.signature.assign(signature->begin(), signature->end());
	return r;
}

Result<RecordBody> parse_body(std::string_view type, FieldReader& f, int format)
{
	if (type == "header")
		return parse_header(f);
	if (type == "input") {
		InputRecord r;
		JEAD_ASSIGN_OR_RETURN(r.line, f.get_bytes("line"));
		return r;
	}
	if (type == "decision")
		return parse_decision(f);
	if (type == "process_start") {
		ProcessStartRecord r;
		JEAD_ASSIGN_OR_RETURN(r.pid, f.get_int32("pid"));
		return r;
	}
	if (type == "output")
		return parse_output(f);
	if (type == "process_exit")
		return parse_process_exit(f);
	if (type == "end")
		return parse_end(f, format);
	if (type == "keystrokes") {
		KeystrokesRecord r;
		JEAD_ASSIGN_OR_RETURN(r.data, f.get_bytes("data"));
		return r;
	}
	if (type == "checkpoint")
		return parse_checkpoint(f);
	if (type == "warning") {
		WarningRecord r;
		JEAD_ASSIGN_OR_RETURN(r.text, f.get_bytes("text"));
		return r;
	}
	if (format >= 3 && type == "resize") {
		ResizeRecord r;
		JEAD_ASSIGN_OR_RETURN(r.columns, f.get_int32("columns"));
		JEAD_ASSIGN_OR_RETURN(r.rows, f.get_int32("rows"));
		return r;
	}
	if (format >= 2)
		return parse_format2_body(type, f);
	return fail(Errc::invalid, "unknown record type " + escape_untrusted(type, 64) + " in a format " +
	                               std::to_string(format) + " transcript");
}

// Parses JSON text, rejecting duplicate object keys: a second "allowed" in
// a decision must not let two readers see two different records.
Result<json> parse_json_strictly(std::string_view line)
{
	std::vector<std::set<std::string>> keys_by_depth;
	bool duplicate = false;
	const json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
		switch (event) {
		case json::parse_event_t::object_start:
			keys_by_depth.emplace_back();
			break;
		case json::parse_event_t::object_end:
			if (!keys_by_depth.empty())
				keys_by_depth.pop_back();
			break;
		case json::parse_event_t::key:
			if (!keys_by_depth.empty() && !keys_by_depth.back().insert(parsed.get<std::string>()).second)
				duplicate = true;
			break;
		default:
			break;
		}
		return true;
	};

	json value;
	try {
		value = json::parse(line.begin(), line.end(), on_event);
	} catch (const json::parse_error& e) {
		// e.what() quotes the offending bytes, which are untrusted, so only
		// the position is reported. e.byte is the 1-based column of the last
		// character read.
		return fail(Errc::invalid, "invalid JSON at column " + std::to_string(e.byte));
	} catch (const json::out_of_range&) {
		// nlohmann throws this for a number such as 1e400 that no double holds.
		return fail(Errc::invalid, "invalid JSON: a number is out of range");
	} catch (const json::exception&) {
		return fail(Errc::invalid, "invalid JSON");
	}
	if (duplicate)
		return fail(Errc::invalid, "duplicate key in a JSON object");
	return value;
}

// `format` is the header's version; format 1 rejects the record types and
// fields added later.
Result<TranscriptRecord> parse_record(std::string_view line, int format)
{
	auto parsed = parse_json_strictly(line);
	if (!parsed)
		return tl::unexpected(parsed.error());
	if (!parsed->is_object())
		return fail(Errc::invalid, "a record must be a JSON object");

	FieldReader f(*parsed);
	TranscriptRecord record;
	std::string type;
	JEAD_ASSIGN_OR_RETURN(record.seq, f.get_uint("seq"));
	JEAD_ASSIGN_OR_RETURN(record.t_ms, f.get_uint("t"));
	JEAD_ASSIGN_OR_RETURN(type, f.get_string("type"));
	JEAD_ASSIGN_OR_RETURN(record.prev, f.get_string("prev"));
	if (!transcript::is_sha256_hex(record.prev))
		return fail(Errc::invalid, "field \"prev\" must be 64 lowercase hex digits");
	JEAD_ASSIGN_OR_RETURN(record.body, parse_body(type, f, format));
	if (auto complete = f.finish(); !complete)
		return tl::unexpected(complete.error());

	record.hash = transcript::line_hash(line);
	return record;
}

#undef JEAD_ASSIGN_OR_RETURN

}  // namespace

std::string_view record_type_name(const RecordBody& body)
{
	// In the order of the RecordBody alternatives.
	static constexpr std::string_view names[] = {"header",     "input",   "decision",  "process_start", "output",
	                                             "process_exit", "end",   "keystrokes", "warning",      "checkpoint",
	                                             "recording",  "stdin",   "tail",      "digest",        "truncated",
	                                             "resize"};
	static_assert(std::size(names) == std::variant_size_v<RecordBody>);
	return names[body.index()];
}

TranscriptParser::TranscriptParser(std::string_view content, std::string name, ReadLimits limits)
	: content_(content), name_(std::move(name)), limits_(limits)
{
}

Result<std::optional<TranscriptRecord>> TranscriptParser::next()
{
	const std::size_t newline = content_.find('\n', offset_);
	if (newline == std::string_view::npos)
		return std::optional<TranscriptRecord>{};

	++line_number_;
	const std::string where = name_ + ":" + std::to_string(line_number_) + ": ";
	const std::string_view line = content_.substr(offset_, newline - offset_);
	offset_ = newline + 1;

	if (line_number_ > limits_.max_records)
		return fail(Errc::limit, where + "more than " + std::to_string(limits_.max_records) + " records");
	if (line.size() > limits_.max_line_bytes)
		return fail(Errc::limit, where + "line of " + std::to_string(line.size()) +
		                             " bytes exceeds the limit of " + std::to_string(limits_.max_line_bytes));
	if (line.empty())
		return fail(Errc::invalid, where + "empty line");

	auto record = parse_record(line, format_);
	if (!record)
		return fail(record.error().code, where + record.error().message);
	if (const auto* header = std::get_if<HeaderRecord>(&record->body); header && line_number_ == 1)
		format_ = header->format;
	record->line_number = line_number_;
	return std::optional<TranscriptRecord>(std::move(*record));
}

std::string_view TranscriptParser::trailing_bytes() const
{
	if (content_.find('\n', offset_) != std::string_view::npos)
		return {};
	return content_.substr(offset_);
}

Result<Transcript> parse_transcript(std::string_view content, std::string name, ReadLimits limits)
{
	PartialTranscript partial = parse_transcript_prefix(content, std::move(name), limits);
	if (partial.error)
		return tl::unexpected(*partial.error);
	return std::move(partial.transcript);
}

PartialTranscript parse_transcript_prefix(std::string_view content, std::string name, ReadLimits limits)
{
	PartialTranscript partial;
	partial.transcript.name = name;
	TranscriptParser parser(content, std::move(name), limits);

	// next() consumes one line per call and fails past max_records, so the
	// loop is bounded by the line count and by the limit.
	for (;;) {
		auto record = parser.next();
		if (!record) {
			partial.error = record.error();
			return partial;
		}
		if (!*record)
			break;
		partial.transcript.records.push_back(std::move(**record));
	}
	partial.transcript.trailing_bytes = parser.trailing_bytes().size();
	return partial;
}

Result<std::string> read_transcript_bytes(const std::filesystem::path& path, const ReadLimits& limits)
{
	const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(errno == ENOENT ? Errc::not_found : Errc::io,
		            "open of transcript " + path.string() + " failed: " + std::strerror(errno));

	auto content = read_transcript_fd(fd, path.string(), limits);
	::close(fd);
	return content;
}

Result<std::string> read_transcript_fd(int fd, const std::string& name, const ReadLimits& limits)
{
	struct stat st {};
	if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		const int error = errno;
		return fail(Errc::invalid, "transcript " + name + " is not a regular file" +
		                               (error != 0 ? std::string(": ") + std::strerror(error) : ""));
	}
	if (static_cast<std::uint64_t>(st.st_size) > limits.max_file_bytes) {
		return fail(Errc::limit, "transcript " + name + " has " + std::to_string(st.st_size) +
		                             " bytes, more than the limit of " + std::to_string(limits.max_file_bytes));
	}

	// A live session may still append to the file. Reading stops at the
	// size fstat returned, so the copy may end inside a record.
	std::string content(static_cast<std::size_t>(st.st_size), '\0');
	std::size_t done = 0;
	int interrupts = 0;
	while (done < content.size()) {
		const ssize_t n = ::read(fd, content.data() + done, content.size() - done);
		if (n < 0 && errno == EINTR && ++interrupts < 100)
			continue;
		if (n < 0) {
			const int error = errno;
			return fail(Errc::io, "read of transcript " + name + " failed: " + std::strerror(error));
		}
		if (n == 0)
			break;
		done += static_cast<std::size_t>(n);
	}
	content.resize(done);
	return content;
}

Result<Transcript> read_transcript(const std::filesystem::path& path, const ReadLimits& limits)
{
	auto content = read_transcript_bytes(path, limits);
	if (!content)
		return tl::unexpected(content.error());
	return parse_transcript(*content, path.string(), limits);
}

}  // namespace jead
