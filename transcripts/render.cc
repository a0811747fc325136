#include "transcripts/render.h"

#include <cstring>
#include <ctime>
#include <limits>
#include <variant>

#include <nlohmann/json.hpp>

#include "transcripts/record_format.h"
#include "transcripts/terminal_text.h"

namespace jead {

namespace {

// Column where record details start in the timeline: "+12345.678s  #12  decision  ".
constexpr const char* kDetailIndent = "                             ";
constexpr const char* kOutputPrefix = "    | ";

// Formats seconds since the epoch as ISO 8601 UTC. OpenSSH uses 0 and the
// maximum uint64 for "no lower bound" and "forever".
std::string format_unix_time(std::uint64_t seconds)
{
	if (seconds == std::numeric_limits<std::uint64_t>::max())
		return "forever";
	if (seconds == 0)
		return "always";
	// Year 9999 ends here; larger values are printed as numbers.
	if (seconds > 253402300799ULL)
		return std::to_string(seconds);

	const auto value = static_cast<std::time_t>(seconds);
	std::tm utc{};
	gmtime_r(&value, &utc);
	char text[32];
	const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
	return std::string(text, n);
}

std::string format_offset(std::uint64_t t_ms)
{
	char text[32];
	std::snprintf(text, sizeof text, "+%llu.%03llus", static_cast<unsigned long long>(t_ms / 1000),
	              static_cast<unsigned long long>(t_ms % 1000));
	return text;
}

std::string join_quoted(const std::vector<std::string>& items)
{
	if (items.empty())
		return "(none)";
	std::string out;
	for (const auto& item : items) {
		if (!out.empty())
			out += ' ';
		out += quote_for_terminal(item);
	}
	return out;
}

std::string signal_text(int signal)
{
	std::string text = "signal " + std::to_string(signal);
	if (const char* abbreviation = sigabbrev_np(signal))
		text += std::string(" (SIG") + abbreviation + ")";
	return text;
}

void render_header(std::string& out, const HeaderRecord& record)
{
	const TranscriptHeader& h = record.header;
	out += "session      " + display_token(h.session_id) + " on host " + display_token(h.host) + ", jead " +
	       display_token(h.jead_version) + ", transcript format " + std::to_string(record.format) + "\n";
	out += "started      " + escape_for_terminal(record.time, TextLayout::single_line) + " (start_time " +
	       std::to_string(h.start_time) + ")\n";
	out += "client       " + display_token(h.client_address) + " port " + std::to_string(h.client_port) + "\n";
	out += "certificate  key ID " + quote_for_terminal(h.key_id) + ", serial " + std::to_string(h.serial) + "\n";
	out += "             principals " + join_quoted(h.principals) + "\n";
	out += "             CA " + display_token(h.ca_fingerprint) + "\n";
	out += "             user key " + display_token(h.user_fingerprint) + "\n";
	out += "             valid from " + format_unix_time(h.valid_after) + " to " +
	       format_unix_time(h.valid_before) + "\n";
	out += "role         " + display_token(h.role) + ", mode " + display_token(h.mode) +
	       (h.pty ? ", with pty" : ", no pty") +
	       (h.columns > 0 ? " " + std::to_string(h.columns) + "x" + std::to_string(h.rows) : std::string()) +
	       ", policy " + display_token(h.policy_version) + "\n";
	if (h.break_glass)
		out += "BREAK-GLASS  this session ran under a break-glass role\n";
}

void render_decision(std::string& out, const DecisionRecord& d)
{
	out += std::string(d.allowed ? "ALLOW" : "DENY") + " verb " + quote_for_terminal(d.verb) + ": " +
	       quote_for_terminal(d.reason) + "\n";
	for (const auto& [name, value] : d.arguments)
		out += std::string(kDetailIndent) + "argument " + quote_for_terminal(name) + " = " +
		       quote_for_terminal(value) + "\n";
	// A command denied before its argv was built has neither argv nor run_as.
	if (d.argv.empty() && d.run_as.empty())
		return;
	out += std::string(kDetailIndent) + "argv " + join_quoted(d.argv) + "\n";
	out += std::string(kDetailIndent) + "run as " + quote_for_terminal(d.run_as) + ", policy " +
	       display_token(d.policy_version) + "\n";
}

void render_process_exit(std::string& out, const ProcessExitRecord& e)
{
	if (e.status)
		out += "status " + std::to_string(*e.status);
	else
		out += "killed by " + signal_text(e.signal.value_or(0));
	out += " after " + std::to_string(e.duration_ms) + " ms, " + std::to_string(e.bytes_out) +
	       " bytes of output";
	if (!e.note.empty())
		out += ", note " + quote_for_terminal(e.note);
	out += "\n";
}

// Appends output data, escaped and prefixed line by line, or raw.
void render_output_data(std::string& out, const std::string& data, const RenderOptions& options)
{
	if (options.raw_output) {
		out += data;
		if (!data.empty() && data.back() != '\n')
			out += '\n';
		return;
	}

	const std::string text = escape_for_terminal(data, TextLayout::multi_line);
	std::size_t start = 0;
	// Each pass consumes one line of `text`.
	while (start < text.size()) {
		std::size_t newline = text.find('\n', start);
		if (newline == std::string::npos)
			newline = text.size();
		out += kOutputPrefix;
		out.append(text, start, newline - start);
		out += '\n';
		start = newline + 1;
	}
}

std::string recording_text(const StreamRecording& recording)
{
	std::string text(transcript::recording_mode_name(recording.mode));
	if (recording.mode == StreamRecording::Mode::head_tail)
		text += " (head " + std::to_string(recording.head_bytes) + " bytes, tail " +
		        std::to_string(recording.tail_bytes) + " bytes)";
	return text;
}

std::string end_text(const EndRecord& end)
{
	std::string text = end.reason;
	if (!end.recovery)
		return text;
	const AbandonedSession& r = *end.recovery;
	text += ", sealed by recovery at " + escape_for_terminal(r.recovered_at, TextLayout::single_line) +
	        " after seq " + std::to_string(r.last_seq);
	text += r.running_pid ? ", process " + std::to_string(*r.running_pid) + " was running" : ", no process running";
	if (r.cut_bytes > 0)
		text += ", " + std::to_string(r.cut_bytes) + " bytes of a line cut short moved to " +
		        quote_for_terminal(r.cut_file) + " (sha256 " + r.cut_sha256 + ")";
	return text;
}

std::string record_label(const TranscriptRecord& record, std::string_view kind)
{
	std::string label = format_offset(record.t_ms);
	label.resize(std::max<std::size_t>(label.size(), 12), ' ');
	std::string seq = "#" + std::to_string(record.seq);
	seq.resize(std::max<std::size_t>(seq.size(), 5), ' ');
	std::string name(kind);
	name.resize(std::max<std::size_t>(name.size(), 10), ' ');
	return label + " " + seq + " " + name + " ";
}

// Renders one record. Output records that follow each other on the same
// stream are merged, so a line split over records reads as one. `i` is
// advanced past the merged records.
void render_record(std::string& out, const std::vector<TranscriptRecord>& records, std::size_t& i,
                   const RenderOptions& options)
{
	const TranscriptRecord& record = records[i];
	const RecordBody& body = record.body;

	if (const auto* header = std::get_if<HeaderRecord>(&body)) {
		out += record_label(record, "header") + "\n";
		render_header(out, *header);
	} else if (const auto* input = std::get_if<InputRecord>(&body)) {
		out += record_label(record, "input") + quote_for_terminal(input->line) + "\n";
	} else if (const auto* decision = std::get_if<DecisionRecord>(&body)) {
		out += record_label(record, "decision");
		render_decision(out, *decision);
	} else if (const auto* start = std::get_if<ProcessStartRecord>(&body)) {
		out += record_label(record, "start") + "pid " + std::to_string(start->pid) + "\n";
	} else if (const auto* output = std::get_if<OutputRecord>(&body)) {
		std::string data = output->data;
		while (i + 1 < records.size()) {
			const auto* next = std::get_if<OutputRecord>(&records[i + 1].body);
			if (next == nullptr || next->stream != output->stream)
				break;
			data += next->data;
			++i;
		}
		const char* stream = output->stream == OutputStream::stdout_ ? "stdout" : "stderr";
		out += record_label(record, stream) + std::to_string(data.size()) + " bytes";
		if (i != static_cast<std::size_t>(&record - records.data()))
			out += " (records to #" + std::to_string(records[i].seq) + ")";
		out += "\n";
		render_output_data(out, data, options);
	} else if (const auto* exited = std::get_if<ProcessExitRecord>(&body)) {
		out += record_label(record, "exit");
		render_process_exit(out, *exited);
	} else if (const auto* end = std::get_if<EndRecord>(&body)) {
		out += record_label(record, "end") + end_text(*end) + "\n";
	} else if (const auto* recording = std::get_if<RecordingRecord>(&body)) {
		out += record_label(record, "recording") + "output " + recording_text(recording->output) + ", stdin " +
		       recording_text(recording->input) + "\n";
	} else if (const auto* input_data = std::get_if<StdinRecord>(&body)) {
		std::string data = input_data->data;
		while (i + 1 < records.size()) {
			const auto* next = std::get_if<StdinRecord>(&records[i + 1].body);
			if (next == nullptr)
				break;
			data += next->data;
			++i;
		}
		out += record_label(record, "stdin") + std::to_string(data.size()) + " bytes";
		if (i != static_cast<std::size_t>(&record - records.data()))
			out += " (records to #" + std::to_string(records[i].seq) + ")";
		out += "\n";
		render_output_data(out, data, options);
	} else if (const auto* tail = std::get_if<TailRecord>(&body)) {
		out += record_label(record, "tail") + std::string(transcript::data_stream_name(tail->stream)) + ", " +
		       std::to_string(tail->skipped) + " bytes not recorded before these " +
		       std::to_string(tail->data.size()) + " bytes\n";
		render_output_data(out, tail->data, options);
	} else if (const auto* digest = std::get_if<DigestRecord>(&body)) {
		out += record_label(record, "digest") + std::string(transcript::data_stream_name(digest->stream)) + " " +
		       std::to_string(digest->bytes) + " bytes";
		if (digest->offset > 0)
			out += " from byte " + std::to_string(digest->offset);
		out += ", sha256 " + digest->sha256 + "\n";
	} else if (const auto* truncated = std::get_if<TruncatedRecord>(&body)) {
		out += record_label(record, "truncated") + "the transcript reached its limit of " +
		       std::to_string(truncated->limit) + " bytes at " + std::to_string(truncated->size) + " bytes: a " +
		       escape_for_terminal(truncated->record, TextLayout::single_line) + " record of " +
		       std::string(transcript::data_stream_name(truncated->stream)) +
		       " and all later data are kept as digests only\n";
	} else if (const auto* keys = std::get_if<KeystrokesRecord>(&body)) {
		out += record_label(record, "keys") + quote_for_terminal(keys->data) + "\n";
	} else if (const auto* warning = std::get_if<WarningRecord>(&body)) {
		out += record_label(record, "warning") + quote_for_terminal(warning->text) + "\n";
	} else if (const auto* resize = std::get_if<ResizeRecord>(&body)) {
		out += record_label(record, "resize") + std::to_string(resize->columns) + "x" + std::to_string(resize->rows) +
		       "\n";
	} else if (const auto* checkpoint = std::get_if<CheckpointRecord>(&body)) {
		// The integrity line says whether the signature was checked.
		out += record_label(record, "checkpoint") + "signed by " + display_token(checkpoint->key_fingerprint) + "\n";
	}
}

std::string header_prev_line(const Transcript& transcript)
{
	if (transcript.records.empty() || transcript.records.front().prev == transcript::kZeroHash)
		return {};
	return "chained from the previous session's end record " + transcript.records.front().prev + "\n";
}

}  // namespace

std::string render_timeline(const Transcript& transcript, const VerifyResult& integrity,
                            const RenderOptions& options)
{
	std::string out;
	out += "transcript   " + display_token(transcript.name) + "\n";
	out += "integrity    " + describe_verify_result(integrity) + "\n";
	out += header_prev_line(transcript);
	if (transcript.records.empty() || !std::holds_alternative<HeaderRecord>(transcript.records.front().body))
		out += "(no header record)\n";
	out += "\n";

	// render_record advances i past merged output records, and the loop adds one.
	for (std::size_t i = 0; i < transcript.records.size(); ++i)
		render_record(out, transcript.records, i, options);

	if (transcript.trailing_bytes > 0)
		out += "(" + std::to_string(transcript.trailing_bytes) + " bytes of a record cut short)\n";
	return out;
}

SessionSummary summarize_session(const Transcript& transcript, const VerifyResult& integrity)
{
	SessionSummary s;
	s.file = transcript.name;
	s.integrity = integrity.status;
	s.integrity_detail = integrity.detail;

	for (const auto& record : transcript.records) {
		if (const auto* header = std::get_if<HeaderRecord>(&record.body); header && record.seq == 0) {
			const TranscriptHeader& h = header->header;
			s.has_header = true;
			s.session_id = h.session_id;
			s.start_time = header->time;
			s.role = h.role;
			s.break_glass = h.break_glass;
			s.key_id = h.key_id;
			s.serial = h.serial;
			s.client_address = h.client_address;
			s.client_port = h.client_port;
		} else if (const auto* decision = std::get_if<DecisionRecord>(&record.body)) {
			s.commands += 1;
			s.denied += decision->allowed ? 0 : 1;
		} else if (const auto* end = std::get_if<EndRecord>(&record.body)) {
			s.end_reason = end->reason;
		}
	}
	return s;
}

std::string render_session_table(const std::vector<SessionSummary>& sessions)
{
	std::vector<std::vector<std::string>> rows;
	rows.push_back({"SESSION", "START", "ROLE", "KEY ID", "SERIAL", "CLIENT", "COMMANDS", "DENIED", "END",
	                "INTEGRITY"});
	for (const auto& s : sessions) {
		if (!s.has_header) {
			rows.push_back({display_token(s.file), "-", "-", "-", "-", "-", "-", "-", "-",
			                std::string(verify_status_name(s.integrity))});
			continue;
		}
		rows.push_back({
			display_token(s.session_id),
			escape_for_terminal(s.start_time, TextLayout::single_line),
			display_token(s.role) + (s.break_glass ? " (break-glass)" : ""),
			display_token(s.key_id),
			std::to_string(s.serial),
			display_token(s.client_address) + ":" + std::to_string(s.client_port),
			std::to_string(s.commands),
			std::to_string(s.denied),
			s.end_reason.empty() ? "-" : s.end_reason,
			std::string(verify_status_name(s.integrity)),
		});
	}

	// Widths count UTF-8 characters, which is right for most key IDs and
	// wrong for double-width characters, but only the alignment suffers.
	const auto width_of = [](const std::string& cell) {
		std::size_t width = 0;
		for (char c : cell)
			width += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
		return width;
	};
	std::vector<std::size_t> widths(rows.front().size(), 0);
	for (const auto& row : rows)
		for (std::size_t c = 0; c < row.size(); ++c)
			widths[c] = std::max(widths[c], width_of(row[c]));

	std::string out;
	for (const auto& row : rows) {
		std::string line;
		for (std::size_t c = 0; c < row.size(); ++c) {
			line += row[c];
			if (c + 1 < row.size())
				line += std::string(widths[c] - width_of(row[c]) + 2, ' ');
		}
		out += line + "\n";
	}
	return out;
}

std::string render_session_json(const std::vector<SessionSummary>& sessions)
{
	using transcript::encode_bytes;
	nlohmann::ordered_json list = nlohmann::ordered_json::array();
	for (const auto& s : sessions) {
		nlohmann::ordered_json item;
		item["file"] = encode_bytes(s.file);
		if (s.has_header) {
			item["session_id"] = encode_bytes(s.session_id);
			item["start_time"] = encode_bytes(s.start_time);
			item["role"] = encode_bytes(s.role);
			item["break_glass"] = s.break_glass;
			item["key_id"] = encode_bytes(s.key_id);
			item["serial"] = s.serial;
			item["client_address"] = encode_bytes(s.client_address);
			item["client_port"] = s.client_port;
		}
		item["commands"] = s.commands;
		item["denied"] = s.denied;
		item["end_reason"] = s.end_reason.empty() ? nlohmann::ordered_json(nullptr)
		                                          : nlohmann::ordered_json(s.end_reason);
		item["integrity"] = verify_status_name(s.integrity);
		item["integrity_detail"] = encode_bytes(s.integrity_detail);
		list.push_back(std::move(item));
	}
	return list.dump(2, ' ', true) + "\n";
}

}  // namespace jead
