// jea-replay output. Terminal escapes recorded in output and in
// peer-supplied fields stay exact in the file, and the timeline, the session
// table and the JSON list neutralise them. The last case checks the exit
// codes of the jea-replay binary.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/escape.h"
#include "transcripts/reader.h"
#include "transcripts/render.h"
#include "transcripts/terminal_text.h"
#include "transcripts/verify.h"
#include "transcripts/writer.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace jead;

namespace {

class TempDir {
public:
	TempDir()
	{
		std::string pattern = (fs::temp_directory_path() / "jead-replay-test-XXXXXX").string();
		REQUIRE(::mkdtemp(pattern.data()) != nullptr);
		path_ = pattern;
	}
	~TempDir()
	{
		std::error_code ignored;
		fs::remove_all(path_, ignored);
	}
	const fs::path& path() const { return path_; }

private:
	fs::path path_;
};

// Erase line (CSI 2K), set window title (OSC 0), write the clipboard
// (OSC 52), the 8-bit CSI byte and a carriage return that would let later
// text overwrite a line.
const std::string kEscapes = "A\x1b[2KB\x1b]0;t\aC\x1b]52;c;Zm9v\aD\x9b" "2KE\rF";
const std::string kEscapesShown = "A\\x1b[2KB\\x1b]0;t\\x07C\\x1b]52;c;Zm9v\\x07D\\x9b2KE\\rF";

fs::path write_hostile_session(const fs::path& dir)
{
	TranscriptHeader h;
	h.session_id = "hostile";
	h.host = "db1";
	h.jead_version = "0.1.0";
	h.client_address = "192.0.2.7";
	h.role = "dba";
	h.key_id = kEscapes;
	h.principals = {kEscapes};
	h.valid_before = ~std::uint64_t{0};
	auto writer = TranscriptWriter::create(dir, h);
	REQUIRE(writer);
	TranscriptWriter& w = **writer;

	REQUIRE(w.input("cat " + kEscapes));
	DecisionRecord d;
	d.allowed = true;
	d.reason = "allowed";
	d.verb = "cat";
	d.arguments = {{"file", kEscapes}};
	d.argv = {"/bin/cat", kEscapes};
	d.run_as = "nobody";
	REQUIRE(w.decision(d));
	REQUIRE(w.process_start(99));
	// The output also pretends to be a decision line.
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("out " + kEscapes + "\n")));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("+0.001s #9 decision ALLOW verb \"rm\"\r\n")));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(3), 60, kEscapes));
	REQUIRE(w.end("exit"));
	return w.path();
}

std::string render(const fs::path& path, bool raw = false)
{
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	RenderOptions options;
	options.raw_output = raw;
	return render_timeline(*transcript, verify_transcript_file(path), options);
}

// Returns true when `text` contains a byte or character a terminal acts on:
// C0 controls other than \n and \t (a lone \r included), DEL, the UTF-8
// encoded C1 range, and any invalid UTF-8 such as a raw 0x9b byte.
bool contains_terminal_controls(const std::string& text)
{
	if (!is_valid_utf8(text))
		return true;
	for (std::size_t i = 0; i < text.size(); ++i) {
		const auto b = static_cast<unsigned char>(text[i]);
		if (b == '\n' || b == '\t')
			continue;
		if (b < 0x20 || b == 0x7F)
			return true;
		if (b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0)
			return true;
	}
	return false;
}

std::string read_file(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

}  // namespace

TEST_CASE("escapes stay exact in the file", "[transcript][replay]")
{
	TempDir dir;
	auto transcript = read_transcript(write_hostile_session(dir.path()));
	REQUIRE(transcript);
	const auto& records = transcript->records;
	REQUIRE(records.size() == 8);

	const auto& header = std::get<HeaderRecord>(records[0].body).header;
	CHECK(header.key_id == kEscapes);
	CHECK(header.principals.at(0) == kEscapes);
	CHECK(std::get<InputRecord>(records[1].body).line == "cat " + kEscapes);
	CHECK(std::get<DecisionRecord>(records[2].body).argv.at(1) == kEscapes);
	CHECK(std::get<DecisionRecord>(records[2].body).arguments.at(0).second == kEscapes);
	CHECK(std::get<OutputRecord>(records[4].body).data == "out " + kEscapes + "\n");
	CHECK(std::get<ProcessExitRecord>(records[6].body).note == kEscapes);
}

TEST_CASE("show neutralises escapes in every field", "[transcript][replay]")
{
	TempDir dir;
	const std::string text = render(write_hostile_session(dir.path()));

	CHECK_FALSE(contains_terminal_controls(text));
	CHECK(text.find("key ID \"" + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("principals \"" + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("input      \"cat " + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("argument \"file\" = \"" + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("argv \"/bin/cat\" \"" + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("    | out " + kEscapesShown + "\n") != std::string::npos);
	CHECK(text.find("note \"" + kEscapesShown + "\"") != std::string::npos);
}

TEST_CASE("show keeps output apart from decisions", "[transcript][replay]")
{
	TempDir dir;
	const std::string text = render(write_hostile_session(dir.path()));

	// The fake decision in the output is indented under the output marker,
	// and \r\n is shown as a line break.
	CHECK(text.find("\n    | +0.001s #9 decision ALLOW verb \"rm\"\n") != std::string::npos);
	CHECK(text.find("\n+0.001s #9") == std::string::npos);
	// Both output records are merged into one block.
	CHECK(text.find("records to #5") != std::string::npos);
}

TEST_CASE("show --raw passes output through only", "[transcript][replay]")
{
	TempDir dir;
	const std::string text = render(write_hostile_session(dir.path()), true);

	CHECK(text.find("out " + kEscapes + "\n") != std::string::npos);
	CHECK(text.find("key ID \"" + kEscapesShown + "\"") != std::string::npos);
	CHECK(text.find("argv \"/bin/cat\" \"" + kEscapesShown + "\"") != std::string::npos);
}

TEST_CASE("terminal escaping covers hidden characters", "[transcript][replay]")
{
	struct Case {
		std::string input;
		std::string single_line;
		std::string multi_line;
	};
	const std::vector<Case> cases = {
		{"plain text", "plain text", "plain text"},
		{"a\\b", "a\\\\b", "a\\\\b"},
		{"line\r\nnext\n", "line\\r\\nnext\\n", "line\nnext\n"},
		{"tab\there", "tab\\there", "tab\there"},
		{"\x1bP1$q\x1b\\", "\\x1bP1$q\\x1b\\\\", "\\x1bP1$q\\x1b\\\\"},
		{"\xc2\x9b" "2K", "\\u009b2K", "\\u009b2K"},
		{"\xe2\x80\xae" "evil", "\\u202eevil", "\\u202eevil"},
		{"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9"},
		{"\xed\xa0\x80", "\\xed\\xa0\\x80", "\\xed\\xa0\\x80"},
		{"\xc0\xaf", "\\xc0\\xaf", "\\xc0\\xaf"},
		{std::string("nul\0", 4), "nul\\x00", "nul\\x00"},
		{"del\x7f", "del\\x7f", "del\\x7f"},
	};
	for (const auto& c : cases) {
		INFO("input: " << escape_for_terminal(c.input, TextLayout::single_line));
		CHECK(escape_for_terminal(c.input, TextLayout::single_line) == c.single_line);
		CHECK(escape_for_terminal(c.input, TextLayout::multi_line) == c.multi_line);
	}
	CHECK(quote_for_terminal("say \"hi\"") == "\"say \\\"hi\\\"\"");
	CHECK(display_token("SHA256:abc+/=") == "SHA256:abc+/=");
	CHECK(display_token("two words") == "\"two words\"");
	CHECK(display_token("") == "\"\"");
}

TEST_CASE("list neutralises escapes", "[transcript][replay]")
{
	TempDir dir;
	const fs::path path = write_hostile_session(dir.path());
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	const SessionSummary summary = summarize_session(*transcript, verify_transcript_file(path));
	CHECK(summary.session_id == "hostile");
	CHECK(summary.key_id == kEscapes);
	CHECK(summary.commands == 1);
	CHECK(summary.denied == 0);
	CHECK(summary.end_reason == "exit");
	CHECK(summary.integrity == VerifyStatus::ok);

	const std::string table = render_session_table({summary});
	CHECK_FALSE(contains_terminal_controls(table));
	CHECK(table.find("\"" + kEscapesShown + "\"") != std::string::npos);

	const std::string json = render_session_json({summary});
	CHECK_FALSE(contains_terminal_controls(json));
	for (unsigned char c : json)
		CHECK(c < 0x80);
	// The 0x9b byte makes the key ID invalid UTF-8, so it is base64.
	const auto parsed = nlohmann::json::parse(json);
	CHECK(parsed.at(0).at("key_id") == nlohmann::json{{"b64", base64_encode(as_bytes(kEscapes))}});
}

TEST_CASE("show flags a tampered transcript first", "[transcript][replay]")
{
	TempDir dir;
	const fs::path path = write_hostile_session(dir.path());
	std::string content = read_file(path);
	const auto at = content.find("\"pid\":99");
	REQUIRE(at != std::string::npos);
	content[at + 7] = '8';
	{
		std::ofstream out(path, std::ios::binary | std::ios::trunc);
		out << content;
	}

	const std::string text = render(path);
	const std::string second_line = text.substr(text.find('\n') + 1, text.find('\n', text.find('\n') + 1) - text.find('\n') - 1);
	CHECK(second_line == "integrity    " + path.string() +
	                         ": tampered at seq 3 (line 4, verified through seq 2): line 5: the SHA-256 of seq 3 "
	                         "does not match the prev of seq 4 (one of the two records was altered)");
}

#ifdef JEA_REPLAY_BINARY
namespace {

struct RunResult {
	int exit_code = -1;
	std::string output;
};

// Runs jea-replay without a shell and returns its exit code and stdout.
RunResult run_replay(const std::vector<std::string>& args, const fs::path& stdout_file)
{
	std::vector<std::string> argv_storage = {JEA_REPLAY_BINARY};
	argv_storage.insert(argv_storage.end(), args.begin(), args.end());
	std::vector<char*> argv;
	for (auto& arg : argv_storage)
		argv.push_back(arg.data());
	argv.push_back(nullptr);

	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
	                                 0600);
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	pid_t pid = 0;
	const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	REQUIRE(spawned == 0);

	int status = 0;
	REQUIRE(waitpid(pid, &status, 0) == pid);
	RunResult result;
	result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	result.output = read_file(stdout_file);
	return result;
}

}  // namespace

TEST_CASE("jea-replay exit codes", "[transcript][replay]")
{
	TempDir dir;
	const fs::path sessions = dir.path() / "sessions";
	fs::create_directory(sessions);
	const fs::path path = write_hostile_session(sessions);
	const fs::path out = dir.path() / "stdout";

	CHECK(run_replay({"--help"}, out).exit_code == 0);
	CHECK(run_replay({"verify", sessions.string()}, out).exit_code == 0);
	CHECK(run_replay({"verify", path.string()}, out).exit_code == 0);
	CHECK(run_replay({"list", sessions.string()}, out).exit_code == 0);

	const RunResult shown = run_replay({"show", path.string()}, out);
	CHECK(shown.exit_code == 0);
	CHECK_FALSE(contains_terminal_controls(shown.output));

	CHECK(run_replay({}, out).exit_code == 2);
	CHECK(run_replay({"frobnicate", path.string()}, out).exit_code == 2);
	CHECK(run_replay({"show", "--bogus", path.string()}, out).exit_code == 2);
	CHECK(run_replay({"verify"}, out).exit_code == 2);

	std::string content = read_file(path);
	content.resize(content.size() - 5);
	{
		std::ofstream damaged(path, std::ios::binary | std::ios::trunc);
		damaged << content;
	}
	const RunResult verified = run_replay({"verify", sessions.string()}, out);
	CHECK(verified.exit_code == 1);
	CHECK(verified.output.find(": truncated (verified through seq 6)") != std::string::npos);
	CHECK(run_replay({"show", path.string()}, out).exit_code == 1);
	CHECK(run_replay({"verify", (dir.path() / "missing.jsonl").string()}, out).exit_code == 1);
}
#endif
