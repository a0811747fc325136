#include "transcripts/replay_tools.h"

#include <algorithm>
#include <cstdio>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/escape.h"
#include "transcripts/record_format.h"
#include "transcripts/terminal_text.h"
#include "transcripts/time_format.h"

namespace jead {

namespace {

using json = nlohmann::ordered_json;

const HeaderRecord* header_of(const Transcript& transcript)
{
	if (transcript.records.empty())
		return nullptr;
	return std::get_if<HeaderRecord>(&transcript.records.front().body);
}

// Whether the session has a record that meets `outcome`.
bool has_outcome(const Transcript& transcript, const std::string& outcome)
{
	for (const auto& record : transcript.records) {
		if (const auto* decision = std::get_if<DecisionRecord>(&record.body)) {
			if (outcome == "denied" && !decision->allowed)
				return true;
		} else if (const auto* exited = std::get_if<ProcessExitRecord>(&record.body)) {
			if (outcome == "failed" && (exited->signal || exited->status.value_or(0) != 0))
				return true;
		} else if (const auto* end = std::get_if<EndRecord>(&record.body)) {
			if (end->reason == outcome)
				return true;
		}
	}
	return false;
}

bool has_verb(const Transcript& transcript, const std::string& verb)
{
	for (const auto& record : transcript.records)
		if (const auto* decision = std::get_if<DecisionRecord>(&record.body); decision && decision->verb == verb)
			return true;
	return false;
}

// Replaces each byte of invalid UTF-8 with U+FFFD.
std::string to_valid_utf8(std::string_view bytes)
{
	std::string out;
	out.reserve(bytes.size());
	std::size_t i = 0;
	// Each pass consumes one character or one byte.
	while (i < bytes.size()) {
		const auto lead = static_cast<unsigned char>(bytes[i]);
		std::size_t length = 1;
		if (lead >= 0xF0)
			length = 4;
		else if (lead >= 0xE0)
			length = 3;
		else if (lead >= 0xC0)
			length = 2;
		const std::string_view candidate = bytes.substr(i, length);
		if (candidate.size() == length && is_valid_utf8(candidate)) {
			out += candidate;
			i += length;
		} else {
			out += "\xEF\xBF\xBD";
			i += 1;
		}
	}
	return out;
}

// Escapes data for a terminal, keeping line breaks as \r\n so that a
// terminal in raw mode (as asciinema's player is) starts each line at the left.
std::string neutralise_for_asciicast(std::string_view bytes)
{
	const std::string text = escape_for_terminal(bytes, TextLayout::multi_line);
	std::string out;
	out.reserve(text.size());
	for (char c : text) {
		if (c == '\n')
			out += '\r';
		out += c;
	}
	return out;
}

std::string note(std::string text)
{
	return "[jead] " + text + "\n";
}

}  // namespace

bool matches_filter(const Transcript& transcript, const SessionFilter& filter)
{
	const HeaderRecord* header = header_of(transcript);
	if (header == nullptr)
		return false;
	const TranscriptHeader& h = header->header;

	if (filter.since_ms || filter.until_ms) {
		const auto start = transcript::parse_utc_time_ms(header->time);
		if (!start || (filter.since_ms && *start < *filter.since_ms) || (filter.until_ms && *start >= *filter.until_ms))
			return false;
	}
	if (filter.role && h.role != *filter.role)
		return false;
	if (filter.principal && std::find(h.principals.begin(), h.principals.end(), *filter.principal) == h.principals.end())
		return false;
	if (filter.key_id && h.key_id != *filter.key_id)
		return false;
	if (filter.serial && h.serial != *filter.serial)
		return false;
	if (filter.client_address && h.client_address != *filter.client_address)
		return false;
	if (filter.break_glass_only && !h.break_glass)
		return false;
	if (filter.verb && !has_verb(transcript, *filter.verb))
		return false;
	if (filter.outcome && !has_outcome(transcript, *filter.outcome))
		return false;
	return true;
}

std::vector<GrepHit> grep_transcript(const Transcript& transcript, std::string_view pattern)
{
	std::vector<GrepHit> hits;
	const auto check = [&](std::uint64_t seq, std::string field, const std::string& value) {
		if (value.find(pattern) != std::string::npos)
			hits.push_back(GrepHit{seq, std::move(field), value});
	};
	for (const auto& record : transcript.records) {
		if (const auto* input = std::get_if<InputRecord>(&record.body)) {
			check(record.seq, "input", input->line);
		} else if (const auto* decision = std::get_if<DecisionRecord>(&record.body)) {
			check(record.seq, "verb", decision->verb);
			for (const auto& [name, value] : decision->arguments)
				check(record.seq, "argument " + quote_for_terminal(name), value);
			for (const auto& arg : decision->argv)
				check(record.seq, "argv", arg);
		}
	}
	return hits;
}

std::vector<PlayFrame> playback_frames(const Transcript& transcript, bool raw)
{
	std::vector<PlayFrame> frames;
	std::uint64_t last_t = 0;
	const auto data = [&](const std::string& bytes) {
		return raw ? bytes : escape_for_terminal(bytes, TextLayout::multi_line);
	};
	for (const auto& record : transcript.records) {
		std::string text;
		if (const auto* input = std::get_if<InputRecord>(&record.body))
			text = note("command " + quote_for_terminal(input->line));
		else if (const auto* decision = std::get_if<DecisionRecord>(&record.body); decision && !decision->allowed)
			text = note("denied: " + quote_for_terminal(decision->reason));
		else if (const auto* output = std::get_if<OutputRecord>(&record.body))
			text = data(output->data);
		else if (const auto* input_data = std::get_if<StdinRecord>(&record.body))
			text = data(input_data->data);
		else if (const auto* tail = std::get_if<TailRecord>(&record.body))
			text = (tail->skipped > 0 ? note(std::to_string(tail->skipped) + " bytes not recorded") : "") + data(tail->data);
		else if (const auto* digest = std::get_if<DigestRecord>(&record.body))
			text = note(std::string(transcript::data_stream_name(digest->stream)) + ": " +
			            std::to_string(digest->bytes) + " bytes kept as sha256 " + digest->sha256);
		else if (const auto* truncated = std::get_if<TruncatedRecord>(&record.body))
			text = note("transcript limit of " + std::to_string(truncated->limit) + " bytes reached; data from here is digests only");
		else if (const auto* exited = std::get_if<ProcessExitRecord>(&record.body))
			text = note(exited->status ? "exit status " + std::to_string(*exited->status)
			                           : "killed by signal " + std::to_string(exited->signal.value_or(0)));
		else if (const auto* end = std::get_if<EndRecord>(&record.body))
			text = note("session ended: " + end->reason);
		if (text.empty())
			continue;
		// A note after output that did not end its line starts a new one.
		if (text.rfind("[jead] ", 0) == 0 && !frames.empty() && !frames.back().text.empty() &&
		    frames.back().text.back() != '\n')
			text = "\n" + text;
		frames.push_back(PlayFrame{std::chrono::milliseconds(record.t_ms - std::min(last_t, record.t_ms)), std::move(text)});
		last_t = record.t_ms;
	}
	return frames;
}

std::string export_asciicast(const Transcript& transcript, bool raw)
{
	json header;
	header["version"] = 2;
	// Format 3 records the pty's size; without it (no pty, or an older
	// file), the common default is given.
	header["width"] = 80;
	header["height"] = 24;
	if (const HeaderRecord* h = header_of(transcript)) {
		if (h->header.columns > 0 && h->header.rows > 0) {
			header["width"] = static_cast<unsigned>(h->header.columns);
			header["height"] = static_cast<unsigned>(h->header.rows);
		}
		header["timestamp"] = h->header.start_time;
		header["title"] = "jead session " + escape_for_terminal(h->header.session_id, TextLayout::single_line);
	}
	std::string out = header.dump(-1, ' ', true) + "\n";

	const auto event = [&](std::uint64_t t_ms, const char* kind, const std::string& bytes) {
		const std::string text = raw ? to_valid_utf8(bytes) : neutralise_for_asciicast(bytes);
		json item = json::array({static_cast<double>(t_ms) / 1000.0, kind, text});
		out += item.dump(-1, ' ', true) + "\n";
	};
	for (const auto& record : transcript.records) {
		if (const auto* output = std::get_if<OutputRecord>(&record.body))
			event(record.t_ms, "o", output->data);
		else if (const auto* tail = std::get_if<TailRecord>(&record.body))
			event(record.t_ms, "o", (tail->skipped > 0 ? "\n[jead] " + std::to_string(tail->skipped) + " bytes not recorded\n" : "") + tail->data);
		else if (const auto* keys = std::get_if<KeystrokesRecord>(&record.body))
			event(record.t_ms, "i", keys->data);
		else if (const auto* resize = std::get_if<ResizeRecord>(&record.body))
			event(record.t_ms, "r", std::to_string(resize->columns) + "x" + std::to_string(resize->rows));
	}
	return out;
}

std::string export_session_json(const Transcript& transcript, const VerifyResult& integrity)
{
	using transcript::encode_bytes;
	json session;
	session["file"] = encode_bytes(transcript.name);
	session["integrity"] = verify_status_name(integrity.status);
	session["integrity_detail"] = encode_bytes(integrity.detail);
	if (const HeaderRecord* header = header_of(transcript)) {
		const TranscriptHeader& h = header->header;
		session["format"] = header->format;
		session["time"] = encode_bytes(header->time);
		session["session_id"] = encode_bytes(h.session_id);
		session["host"] = encode_bytes(h.host);
		session["client_address"] = encode_bytes(h.client_address);
		session["client_port"] = h.client_port;
		session["role"] = encode_bytes(h.role);
		session["key_id"] = encode_bytes(h.key_id);
		session["serial"] = h.serial;
		json principals = json::array();
		for (const auto& p : h.principals)
			principals.push_back(encode_bytes(p));
		session["principals"] = std::move(principals);
		session["ca_fingerprint"] = encode_bytes(h.ca_fingerprint);
		session["mode"] = encode_bytes(h.mode);
		session["break_glass"] = h.break_glass;
	}

	json commands = json::array();
	json current;
	const auto flush = [&] {
		if (!current.is_null())
			commands.push_back(std::move(current));
		current = nullptr;
	};
	for (const auto& record : transcript.records) {
		if (const auto* input = std::get_if<InputRecord>(&record.body)) {
			flush();
			current["seq"] = record.seq;
			current["t_ms"] = record.t_ms;
			current["line"] = encode_bytes(input->line);
		} else if (const auto* d = std::get_if<DecisionRecord>(&record.body)) {
			if (current.is_null() || current.contains("allowed")) {
				flush();
				current["seq"] = record.seq;
				current["t_ms"] = record.t_ms;
			}
			current["allowed"] = d->allowed;
			current["reason"] = encode_bytes(d->reason);
			current["verb"] = encode_bytes(d->verb);
			json arguments = json::array();
			for (const auto& [name, value] : d->arguments)
				arguments.push_back(json{{"name", encode_bytes(name)}, {"value", encode_bytes(value)}});
			current["arguments"] = std::move(arguments);
			json argv = json::array();
			for (const auto& arg : d->argv)
				argv.push_back(encode_bytes(arg));
			current["argv"] = std::move(argv);
			current["run_as"] = encode_bytes(d->run_as);
		} else if (const auto* recording = std::get_if<RecordingRecord>(&record.body); recording && !current.is_null()) {
			current["record_output"] = transcript::recording_mode_name(recording->output.mode);
			current["record_stdin"] = transcript::recording_mode_name(recording->input.mode);
		} else if (const auto* start = std::get_if<ProcessStartRecord>(&record.body); start && !current.is_null()) {
			current["pid"] = start->pid;
		} else if (const auto* exited = std::get_if<ProcessExitRecord>(&record.body); exited && !current.is_null()) {
			if (exited->status)
				current["status"] = *exited->status;
			if (exited->signal)
				current["signal"] = *exited->signal;
			current["duration_ms"] = exited->duration_ms;
			current["bytes_out"] = exited->bytes_out;
			current["note"] = encode_bytes(exited->note);
		} else if (const auto* truncated = std::get_if<TruncatedRecord>(&record.body)) {
			session["truncated_at_seq"] = record.seq;
			session["max_bytes"] = truncated->limit;
		} else if (const auto* end = std::get_if<EndRecord>(&record.body)) {
			session["end_reason"] = end->reason;
			if (end->recovery) {
				session["recovered_at"] = encode_bytes(end->recovery->recovered_at);
				if (end->recovery->running_pid)
					session["abandoned_pid"] = *end->recovery->running_pid;
			}
		}
	}
	flush();
	session["commands"] = std::move(commands);
	if (!session.contains("end_reason"))
		session["end_reason"] = nullptr;
	return session.dump(-1, ' ', true) + "\n";
}

}  // namespace jead
