// jea-replay: lists, verifies, shows, plays, exports and searches jead
// session transcripts.
// Exit status: 0 when no problem was found, 1 when a transcript is damaged,
// unsealed or unreadable, 2 for a usage error.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "transcripts/reader.h"
#include "transcripts/render.h"
#include "transcripts/replay_tools.h"
#include "transcripts/time_format.h"
#include "transcripts/signing.h"
#include "transcripts/terminal_text.h"
#include "transcripts/verify.h"

namespace {

namespace fs = std::filesystem;
using namespace jead;

constexpr int kExitOk = 0;
constexpr int kExitProblem = 1;
constexpr int kExitUsage = 2;

// Maximum directory entries examined by list and verify.
constexpr std::size_t kMaxDirectoryEntries = 1'000'000;

constexpr std::string_view kUsage =
	"Usage: jea-replay COMMAND [OPTIONS] PATH\n"
	"\n"
	"Reads the session transcripts that jead writes (one <session_id>.jsonl file\n"
	"per session channel, transcript formats 1 to 3).\n"
	"\n"
	"Commands:\n"
	"  show [--raw] FILE   Print the session as a timeline: who connected, from\n"
	"                      where, with which certificate, then every command,\n"
	"                      decision, program output, exit status and the end.\n"
	"                      Control characters and escape sequences in recorded\n"
	"                      data are shown escaped. --raw copies program output\n"
	"                      and stdin data to the terminal unchanged (recorded\n"
	"                      escape sequences then take effect); other fields stay\n"
	"                      escaped.\n"
	"  list [--json] [FILTERS] DIR\n"
	"                      Print one row per transcript in DIR: session id,\n"
	"                      start time, role, key ID, serial, client, commands,\n"
	"                      denied commands, end reason and integrity. --json\n"
	"                      prints a JSON array instead. FILTERS keep only the\n"
	"                      sessions that match all of them:\n"
	"                        --since TIME, --until TIME  start time at or after,\n"
	"                          or before, TIME: UTC as 2024-12-04,\n"
	"                          2024-12-04T20:07, 2024-12-04T20:07:00[.123][Z],\n"
	"                          or @SECONDS since the epoch\n"
	"                        --role NAME, --principal NAME, --key-id ID,\n"
	"                        --serial N, --client ADDR  exact header values\n"
	"                        --verb NAME  a command of that verb was decided\n"
	"                        --break-glass  the role was a break-glass role\n"
	"                        --outcome denied|failed|expired|revoked  a command\n"
	"                          was denied, a program exited with a status other\n"
	"                          than 0 or by a signal, or the session ended so\n"
	"  play [--speed N] [--pause-max S] [--raw] FILE\n"
	"                      Replay the session's output in real time, with a\n"
	"                      [jead] line for each command, denial, exit and end.\n"
	"                      --speed divides the recorded delays (default 1);\n"
	"                      --pause-max caps each delay at S seconds (default 2).\n"
	"                      Output is escaped unless --raw.\n"
	"  export --format asciicast [--raw] FILE\n"
	"                      Print an asciicast v2 recording of the output, for\n"
	"                      asciinema. Output is escaped unless --raw.\n"
	"  export --format json PATH\n"
	"                      Print one line of JSON per session in FILE or DIR:\n"
	"                      header, integrity, commands with decision and exit,\n"
	"                      end. Non-ASCII text is written as \\u escapes.\n"
	"  grep PATTERN DIR    Print FILE:SEQ and the match for every command line,\n"
	"                      verb, argument value and argv element in DIR that\n"
	"                      contains PATTERN (plain bytes, case-sensitive).\n"
	"                      Exit status 1 when nothing matches.\n"
	"  verify [--key PUB] PATH\n"
	"                      Check seq numbers and the SHA-256 chain of FILE, or of\n"
	"                      every *.jsonl file in DIR, and print ok, unsealed,\n"
	"                      truncated, tampered or unreadable for each. With\n"
	"                      --key, PUB is a PEM Ed25519 public key: every\n"
	"                      checkpoint must be signed by it, and ok also needs a\n"
	"                      signed checkpoint after the end record.\n"
	"  help, --help        Print this help.\n"
	"\n"
	"Exit status: 0 if every transcript is ok, 1 if any is unsealed, truncated,\n"
	"tampered or unreadable (verify on a directory without transcripts is 1 too),\n"
	"2 for a usage error.\n";

void print(std::string_view text)
{
	std::fwrite(text.data(), 1, text.size(), stdout);
}

void print_error(std::string_view text)
{
	std::fwrite(text.data(), 1, text.size(), stderr);
	std::fputc('\n', stderr);
}

int usage_error(std::string_view message)
{
	print_error(std::string("jea-replay: ") + std::string(message));
	print_error("Run 'jea-replay --help' for usage.");
	return kExitUsage;
}

// Returns the *.jsonl files of `dir`, sorted by name.
Result<std::vector<fs::path>> list_transcript_files(const fs::path& dir)
{
	std::error_code error;
	fs::directory_iterator it(dir, error);
	if (error)
		return fail(Errc::io, "open of directory " + display_token(dir.string()) + " failed: " + error.message());

	std::vector<fs::path> files;
	std::size_t seen = 0;
	for (; it != fs::directory_iterator(); it.increment(error)) {
		if (error)
			return fail(Errc::io, "reading directory " + display_token(dir.string()) + " failed: " +
			                          error.message());
		if (++seen > kMaxDirectoryEntries)
			return fail(Errc::limit, "directory " + display_token(dir.string()) + " has more than " +
			                             std::to_string(kMaxDirectoryEntries) + " entries");
		if (it->path().extension() == ".jsonl")
			files.push_back(it->path());
	}
	std::sort(files.begin(), files.end());
	return files;
}

int run_show(const fs::path& file, bool raw)
{
	auto content = read_transcript_bytes(file);
	if (!content) {
		print_error("jea-replay: " + escape_for_terminal(content.error().message, TextLayout::single_line));
		return kExitProblem;
	}

	const VerifyResult integrity = verify_transcript(*content, file.string());
	PartialTranscript partial = parse_transcript_prefix(*content, file.string());
	RenderOptions options;
	options.raw_output = raw;
	print(render_timeline(partial.transcript, integrity, options));
	if (partial.error)
		print("(stopped at a malformed line: " +
		      escape_for_terminal(partial.error->message, TextLayout::single_line) + ")\n");
	return integrity.status == VerifyStatus::ok ? kExitOk : kExitProblem;
}

int run_list(const fs::path& dir, bool json, const SessionFilter& filter)
{
	auto files = list_transcript_files(dir);
	if (!files) {
		print_error("jea-replay: " + files.error().message);
		return kExitProblem;
	}

	std::vector<SessionSummary> sessions;
	bool problem = false;
	for (const auto& file : *files) {
		auto content = read_transcript_bytes(file);
		if (!content) {
			SessionSummary unreadable;
			unreadable.file = file.string();
			unreadable.integrity = VerifyStatus::unreadable;
			unreadable.integrity_detail = content.error().message;
			sessions.push_back(std::move(unreadable));
			problem = true;
			continue;
		}
		const VerifyResult integrity = verify_transcript(*content, file.string());
		const PartialTranscript partial = parse_transcript_prefix(*content, file.string());
		if (!matches_filter(partial.transcript, filter))
			continue;
		sessions.push_back(summarize_session(partial.transcript, integrity));
		problem = problem || integrity.status != VerifyStatus::ok;
	}

	// Oldest first; the ISO 8601 times sort as text. Files without a header
	// have an empty start time and come first.
	std::stable_sort(sessions.begin(), sessions.end(),
	                 [](const SessionSummary& a, const SessionSummary& b) { return a.start_time < b.start_time; });
	print(json ? render_session_json(sessions) : render_session_table(sessions));
	return problem ? kExitProblem : kExitOk;
}

int run_verify(const fs::path& path, const fs::path& key_path)
{
	std::optional<TranscriptVerifyKey> key;
	if (!key_path.empty()) {
		auto loaded = TranscriptVerifyKey::load(key_path);
		if (!loaded) {
			print_error("jea-replay: " + escape_for_terminal(loaded.error().message, TextLayout::single_line));
			return kExitUsage;
		}
		key = std::move(*loaded);
	}
	const TranscriptVerifyKey* key_pointer = key ? &*key : nullptr;

	std::error_code error;
	// The directory itself may be a symlink, but its files are opened
	// without following one.
	const bool is_directory = fs::is_directory(fs::status(path, error));
	if (!is_directory) {
		const VerifyResult result = verify_transcript_file(path, {}, key_pointer);
		print(describe_verify_result(result) + "\n");
		return result.status == VerifyStatus::ok ? kExitOk : kExitProblem;
	}

	auto files = list_transcript_files(path);
	if (!files) {
		print_error("jea-replay: " + files.error().message);
		return kExitProblem;
	}
	if (files->empty()) {
		print_error("jea-replay: no transcript files (*.jsonl) in " + display_token(path.string()));
		return kExitProblem;
	}

	std::vector<VerifyResult> results;
	bool problem = false;
	for (const auto& file : *files) {
		results.push_back(verify_transcript_file(file, {}, key_pointer));
		print(describe_verify_result(results.back()) + "\n");
		problem = problem || results.back().status != VerifyStatus::ok;
	}
	for (const auto& message : check_session_links(results)) {
		print(message + "\n");
		problem = true;
	}
	return problem ? kExitProblem : kExitOk;
}

// Options of one command: the names it accepts and whether each takes a
// value. Each option may be given once.
struct OptionSpec {
	std::string_view name;
	bool takes_value = false;
};

struct CommandLine {
	std::map<std::string, std::string, std::less<>> options;  // flags map to ""
	std::vector<std::string> operands;

	bool has(std::string_view name) const { return options.count(name) > 0; }
	std::optional<std::string> value(std::string_view name) const
	{
		const auto it = options.find(name);
		return it == options.end() ? std::nullopt : std::optional<std::string>(it->second);
	}
};

Result<CommandLine> parse_arguments(const std::vector<std::string_view>& args, const std::vector<OptionSpec>& specs,
                                    std::size_t operands)
{
	CommandLine parsed;
	for (std::size_t i = 0; i < args.size(); ++i) {
		const std::string_view arg = args[i];
		const bool is_option = arg.size() > 1 && arg.front() == '-';
		if (!is_option) {
			parsed.operands.emplace_back(arg);
			continue;
		}
		const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.name == arg; });
		if (spec == specs.end())
			return fail(Errc::invalid, "unknown option " + display_token(arg));
		if (parsed.has(arg))
			return fail(Errc::invalid, "option " + display_token(arg) + " is given twice");
		std::string value;
		if (spec->takes_value) {
			if (i + 1 == args.size())
				return fail(Errc::invalid, "option " + display_token(arg) + " needs a value");
			value = args[++i];
		}
		parsed.options.emplace(std::string(arg), std::move(value));
	}
	if (parsed.operands.size() < operands)
		return fail(Errc::invalid, operands == 2 && parsed.operands.empty() ? "missing pattern and directory"
		                                                                     : "missing path");
	if (parsed.operands.size() > operands)
		return fail(Errc::invalid, "unexpected argument " + display_token(parsed.operands[operands]));
	return parsed;
}

Result<SessionFilter> parse_filter(const CommandLine& line)
{
	SessionFilter filter;
	for (const auto& [name, target] : {std::pair{"--since", &filter.since_ms}, std::pair{"--until", &filter.until_ms}}) {
		if (auto text = line.value(name)) {
			*target = transcript::parse_utc_time_ms(*text);
			if (!*target)
				return fail(Errc::invalid, std::string(name) + ": invalid time " + display_token(*text) +
				                               " (expected UTC as 2024-12-04, 2024-12-04T20:07:00 or @SECONDS)");
		}
	}
	filter.role = line.value("--role");
	filter.principal = line.value("--principal");
	filter.key_id = line.value("--key-id");
	filter.verb = line.value("--verb");
	filter.client_address = line.value("--client");
	filter.break_glass_only = line.has("--break-glass");
	if (auto serial = line.value("--serial")) {
		std::uint64_t number = 0;
		const auto [end, error] = std::from_chars(serial->data(), serial->data() + serial->size(), number);
		if (error != std::errc() || end != serial->data() + serial->size() || serial->empty())
			return fail(Errc::invalid, "--serial: invalid serial " + display_token(*serial) + " (expected a decimal number)");
		filter.serial = number;
	}
	if (auto outcome = line.value("--outcome")) {
		if (*outcome != "denied" && *outcome != "failed" && *outcome != "expired" && *outcome != "revoked")
			return fail(Errc::invalid, "--outcome: invalid outcome " + display_token(*outcome) +
			                               " (expected denied, failed, expired or revoked)");
		filter.outcome = *outcome;
	}
	return filter;
}

// Parses a non-negative decimal number such as "2" or "0.5".
std::optional<double> parse_seconds(const std::string& text)
{
	double value = 0;
	const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (error != std::errc() || end != text.data() + text.size() || text.empty() || !(value >= 0) || value > 1e9)
		return std::nullopt;
	return value;
}

int run_play(const fs::path& file, double speed, double pause_max, bool raw)
{
	auto content = read_transcript_bytes(file);
	if (!content) {
		print_error("jea-replay: " + escape_for_terminal(content.error().message, TextLayout::single_line));
		return kExitProblem;
	}
	const VerifyResult integrity = verify_transcript(*content, file.string());
	const PartialTranscript partial = parse_transcript_prefix(*content, file.string());
	if (integrity.status != VerifyStatus::ok)
		print_error("jea-replay: " + describe_verify_result(integrity));

	// One pass per frame; each sleep is capped by pause_max.
	for (const PlayFrame& frame : playback_frames(partial.transcript, raw)) {
		const double wait = std::min(static_cast<double>(frame.delay.count()) / 1000.0 / speed, pause_max);
		if (wait > 0)
			std::this_thread::sleep_for(std::chrono::duration<double>(wait));
		print(frame.text);
		std::fflush(stdout);
	}
	return integrity.status == VerifyStatus::ok ? kExitOk : kExitProblem;
}

int run_export(const fs::path& path, const std::string& format, bool raw)
{
	std::error_code error;
	const bool is_directory = fs::is_directory(fs::status(path, error));
	if (format == "asciicast" && is_directory)
		return usage_error("export --format asciicast needs one FILE, not a directory");

	std::vector<fs::path> files{path};
	if (is_directory) {
		auto listed = list_transcript_files(path);
		if (!listed) {
			print_error("jea-replay: " + listed.error().message);
			return kExitProblem;
		}
		files = std::move(*listed);
	}

	bool problem = false;
	for (const auto& file : files) {
		auto content = read_transcript_bytes(file);
		if (!content) {
			print_error("jea-replay: " + escape_for_terminal(content.error().message, TextLayout::single_line));
			problem = true;
			continue;
		}
		const VerifyResult integrity = verify_transcript(*content, file.string());
		const PartialTranscript partial = parse_transcript_prefix(*content, file.string());
		problem = problem || integrity.status != VerifyStatus::ok;
		if (format == "asciicast") {
			if (integrity.status != VerifyStatus::ok)
				print_error("jea-replay: " + describe_verify_result(integrity));
			print(export_asciicast(partial.transcript, raw));
		} else {
			print(export_session_json(partial.transcript, integrity));
		}
	}
	return problem ? kExitProblem : kExitOk;
}

int run_grep(const std::string& pattern, const fs::path& dir)
{
	auto files = list_transcript_files(dir);
	if (!files) {
		print_error("jea-replay: " + files.error().message);
		return kExitProblem;
	}
	bool found = false;
	for (const auto& file : *files) {
		auto content = read_transcript_bytes(file);
		if (!content) {
			print_error("jea-replay: " + escape_for_terminal(content.error().message, TextLayout::single_line));
			continue;
		}
		const PartialTranscript partial = parse_transcript_prefix(*content, file.string());
		if (partial.error)
			print_error("jea-replay: " + escape_for_terminal(partial.error->message, TextLayout::single_line) +
			            " (searched the records before it)");
		for (const GrepHit& hit : grep_transcript(partial.transcript, pattern)) {
			print(display_token(file.string()) + ":" + std::to_string(hit.seq) + ": " + hit.field + " " +
			      quote_for_terminal(hit.value) + "\n");
			found = true;
		}
	}
	return found ? kExitOk : kExitProblem;
}

const std::vector<OptionSpec> kFilterOptions = {
	{"--json", false},      {"--since", true},  {"--until", true},   {"--role", true},   {"--principal", true},
	{"--key-id", true},     {"--serial", true}, {"--verb", true},    {"--outcome", true}, {"--client", true},
	{"--break-glass", false},
};

}  // namespace

int main(int argc, char** argv)
{
	if (argc < 2)
		return usage_error("missing command");

	const std::string_view command = argv[1];
	const std::vector<std::string_view> args(argv + 2, argv + argc);
	if (command == "--help" || command == "-h" || command == "help") {
		print(kUsage);
		return kExitOk;
	}
	if (std::find(args.begin(), args.end(), "--help") != args.end()) {
		print(kUsage);
		return kExitOk;
	}

	std::vector<OptionSpec> specs;
	std::size_t operands = 1;
	if (command == "show")
		specs = {{"--raw", false}};
	else if (command == "list")
		specs = kFilterOptions;
	else if (command == "verify")
		specs = {{"--key", true}};
	else if (command == "play")
		specs = {{"--speed", true}, {"--pause-max", true}, {"--raw", false}};
	else if (command == "export")
		specs = {{"--format", true}, {"--raw", false}};
	else if (command == "grep")
		operands = 2;
	else
		return usage_error("unknown command " + display_token(command));

	auto parsed = parse_arguments(args, specs, operands);
	if (!parsed)
		return usage_error(std::string(command) + ": " + parsed.error().message);
	const CommandLine& line = *parsed;
	const std::string& path = line.operands.back();

	if (command == "show")
		return run_show(path, line.has("--raw"));
	if (command == "verify")
		return run_verify(path, line.value("--key").value_or(""));
	if (command == "grep")
		return run_grep(line.operands[0], path);
	if (command == "list") {
		auto filter = parse_filter(line);
		if (!filter)
			return usage_error("list: " + filter.error().message);
		return run_list(path, line.has("--json"), *filter);
	}
	if (command == "play") {
		const auto speed = parse_seconds(line.value("--speed").value_or("1"));
		const auto pause_max = parse_seconds(line.value("--pause-max").value_or("2"));
		if (!speed || *speed <= 0)
			return usage_error("play: --speed needs a number above 0");
		if (!pause_max)
			return usage_error("play: --pause-max needs a number of seconds, 0 or more");
		return run_play(path, *speed, *pause_max, line.has("--raw"));
	}
	const std::string format = line.value("--format").value_or("");
	if (format != "asciicast" && format != "json")
		return usage_error("export: --format must be asciicast or json");
	if (format == "json" && line.has("--raw"))
		return usage_error("export: --raw applies to --format asciicast only");
	return run_export(path, format, line.has("--raw"));
}
