// jea-replay: lists, verifies and shows jead session transcripts.
// Exit status: 0 when no problem was found, 1 when a transcript is damaged,
// unsealed or unreadable, 2 for a usage error.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "transcripts/reader.h"
#include "transcripts/render.h"
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
	"per session channel).\n"
	"\n"
	"Commands:\n"
	"  show [--raw] FILE   Print the session as a timeline: who connected, from\n"
	"                      where, with which certificate, then every command,\n"
	"                      decision, program output, exit status and the end.\n"
	"                      Control characters and escape sequences in recorded\n"
	"                      data are shown escaped. --raw copies program output\n"
	"                      to the terminal unchanged (recorded escape sequences\n"
	"                      then take effect); other fields stay escaped.\n"
	"  list [--json] DIR   Print one row per transcript in DIR: session id,\n"
	"                      start time, role, key ID, serial, client, commands,\n"
	"                      denied commands, end reason and integrity. --json\n"
	"                      prints a JSON array instead.\n"
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

int run_list(const fs::path& dir, bool json)
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

// Parses "COMMAND [--flag] [--key FILE] PATH" where `flag` is the command's
// only boolean option and --key is accepted when `accepts_key` is set.
struct CommandLine {
	bool flag = false;
	std::string key;
	std::string path;
};

Result<CommandLine> parse_arguments(const std::vector<std::string_view>& args, std::string_view flag,
                                    bool accepts_key)
{
	CommandLine parsed;
	for (std::size_t i = 0; i < args.size(); ++i) {
		const std::string_view arg = args[i];
		if (accepts_key && arg == "--key") {
			if (i + 1 == args.size())
				return fail(Errc::invalid, "--key needs a public key file");
			parsed.key = args[++i];
		} else if (!flag.empty() && arg == flag) {
			parsed.flag = true;
		} else if (arg.size() > 1 && arg.front() == '-') {
			return fail(Errc::invalid, "unknown option " + display_token(arg));
		} else if (parsed.path.empty()) {
			parsed.path = arg;
		} else {
			return fail(Errc::invalid, "unexpected argument " + display_token(arg));
		}
	}
	if (parsed.path.empty())
		return fail(Errc::invalid, "missing path");
	return parsed;
}

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

	std::string_view flag;
	if (command == "show")
		flag = "--raw";
	else if (command == "list")
		flag = "--json";
	else if (command != "verify")
		return usage_error("unknown command " + display_token(command));

	auto parsed = parse_arguments(args, flag, command == "verify");
	if (!parsed)
		return usage_error(std::string(command) + ": " + parsed.error().message);

	if (command == "show")
		return run_show(parsed->path, parsed->flag);
	if (command == "list")
		return run_list(parsed->path, parsed->flag);
	return run_verify(parsed->path, parsed->key);
}
