// jea-replay list filters, grep, play and export: the library functions in
// replay_tools.h and the jea-replay binary's options. The asciicast output
// is checked against the asciicast v2 layout: a header object with version
// 2, width and height, then [seconds, "o" or "i", string] events in time
// order.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/escape.h"
#include "transcripts/reader.h"
#include "transcripts/render.h"
#include "transcripts/replay_tools.h"
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
		std::string pattern = (fs::temp_directory_path() / "jead-tools-test-XXXXXX").string();
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

const std::string kEscape = "\x1b]0;pwned\a\x1b[2J";

struct SessionSpec {
	std::string id;
	std::string role = "dba";
	std::string key_id = "alice";
	std::uint64_t serial = 42;
	std::string client = "192.0.2.7";
	std::string verb = "uptime";
	bool allowed = true;
	int status = 0;
	std::string end = "exit";
	bool break_glass = false;
};

fs::path write_session(const fs::path& dir, const SessionSpec& spec)
{
	TranscriptHeader h;
	h.session_id = spec.id;
	h.host = "db1";
	h.role = spec.role;
	h.key_id = spec.key_id;
	h.serial = spec.serial;
	h.principals = {"alice", "ops" + kEscape};
	h.client_address = spec.client;
	h.mode = "exec";
	h.break_glass = spec.break_glass;
	auto writer = TranscriptWriter::create(dir, h);
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	REQUIRE(w.input(spec.verb + " --since /var/log/" + kEscape));
	DecisionRecord d;
	d.allowed = spec.allowed;
	d.reason = spec.allowed ? "allowed" : "denied: not in role";
	d.verb = spec.verb;
	d.arguments = {{"path", "/var/log/" + kEscape}};
	d.argv = spec.allowed ? std::vector<std::string>{"/usr/bin/" + spec.verb, "/var/log/" + kEscape}
	                      : std::vector<std::string>{};
	REQUIRE(w.decision(d));
	if (spec.allowed) {
		REQUIRE(w.begin_command({}, {}));
		REQUIRE(w.process_start(100));
		REQUIRE(w.output(OutputStream::stdout_, as_bytes("up 3 days\n" + kEscape + "\n")));
		REQUIRE(w.keystrokes("q"));
		REQUIRE(w.process_exit(spec.status, 0, std::chrono::milliseconds(2), 20));
	}
	REQUIRE(w.end(spec.end));
	return w.path();
}

Transcript load(const fs::path& path)
{
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	return std::move(*transcript);
}

// True for C0 controls other than \n, \r and \t, DEL and invalid UTF-8.
bool contains_terminal_controls(const std::string& text)
{
	if (!jead::is_valid_utf8(text))
		return true;
	for (unsigned char c : text)
		if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7F)
			return true;
	return false;
}

std::string read_file(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

struct RunResult {
	int exit_code = -1;
	std::string output;
};

// Runs argv[0] without a shell and returns its exit code and stdout.
RunResult run_program(std::vector<std::string> argv_storage, const fs::path& stdout_file)
{
	std::vector<char*> argv;
	for (auto& arg : argv_storage)
		argv.push_back(arg.data());
	argv.push_back(nullptr);

	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	pid_t pid = 0;
	const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	REQUIRE(spawned == 0);
	int status = 0;
	REQUIRE(waitpid(pid, &status, 0) == pid);
	return RunResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(stdout_file)};
}

RunResult run_replay(const std::vector<std::string>& args, const fs::path& stdout_file)
{
	std::vector<std::string> argv = {JEA_REPLAY_BINARY};
	argv.insert(argv.end(), args.begin(), args.end());
	return run_program(std::move(argv), stdout_file);
}

// Checks the asciicast v2 layout and returns the events.
std::vector<nlohmann::json> check_asciicast(const std::string& text)
{
	std::istringstream in(text);
	std::string line;
	REQUIRE(std::getline(in, line));
	const auto header = nlohmann::json::parse(line);
	CHECK(header.at("version") == 2);
	CHECK(header.at("width").is_number_unsigned());
	CHECK(header.at("height").is_number_unsigned());
	std::vector<nlohmann::json> events;
	double last = 0;
	while (std::getline(in, line)) {
		auto event = nlohmann::json::parse(line);
		REQUIRE(event.is_array());
		REQUIRE(event.size() == 3);
		CHECK(event[0].is_number());
		CHECK(event[0].get<double>() >= last);
		last = event[0].get<double>();
		CHECK((event[1] == "o" || event[1] == "i" || event[1] == "r"));
		CHECK(event[2].is_string());
		events.push_back(std::move(event));
	}
	return events;
}

}  // namespace

TEST_CASE("list filters match header and records", "[transcript][tools]")
{
	TempDir dir;
	const Transcript ok = load(write_session(dir.path(), {.id = "ok"}));
	const Transcript denied = load(write_session(dir.path(), {.id = "denied", .verb = "reboot", .allowed = false}));
	const Transcript failed = load(write_session(dir.path(), {.id = "failed", .status = 3, .end = "revoked"}));

	CHECK(matches_filter(ok, {}));
	SessionFilter role;
	role.role = "dba";
	CHECK(matches_filter(ok, role));
	role.role = "web";
	CHECK_FALSE(matches_filter(ok, role));

	SessionFilter principal;
	principal.principal = "ops" + kEscape;
	CHECK(matches_filter(ok, principal));
	principal.principal = "ops";
	CHECK_FALSE(matches_filter(ok, principal));

	SessionFilter serial;
	serial.serial = 42;
	CHECK(matches_filter(ok, serial));
	serial.serial = 43;
	CHECK_FALSE(matches_filter(ok, serial));

	SessionFilter client;
	client.client_address = "192.0.2.7";
	CHECK(matches_filter(ok, client));
	client.client_address = "192.0.2.70";
	CHECK_FALSE(matches_filter(ok, client));

	const Transcript emergency = load(write_session(dir.path(), {.id = "emergency", .break_glass = true}));
	SessionFilter break_glass;
	break_glass.break_glass_only = true;
	CHECK(matches_filter(emergency, break_glass));
	CHECK_FALSE(matches_filter(ok, break_glass));
	CHECK(matches_filter(emergency, {}));

	SessionFilter verb;
	verb.verb = "reboot";
	CHECK(matches_filter(denied, verb));
	CHECK_FALSE(matches_filter(ok, verb));

	SessionFilter outcome;
	outcome.outcome = "denied";
	CHECK(matches_filter(denied, outcome));
	CHECK_FALSE(matches_filter(ok, outcome));
	outcome.outcome = "failed";
	CHECK(matches_filter(failed, outcome));
	CHECK_FALSE(matches_filter(ok, outcome));
	outcome.outcome = "revoked";
	CHECK(matches_filter(failed, outcome));
	outcome.outcome = "expired";
	CHECK_FALSE(matches_filter(failed, outcome));

	SessionFilter time;
	time.since_ms = 0;
	CHECK(matches_filter(ok, time));
	time.since_ms = std::int64_t{253402300799} * 1000;
	CHECK_FALSE(matches_filter(ok, time));
	time.since_ms.reset();
	time.until_ms = 0;
	CHECK_FALSE(matches_filter(ok, time));
}

TEST_CASE("grep finds lines, verbs and arguments", "[transcript][tools]")
{
	TempDir dir;
	const Transcript t = load(write_session(dir.path(), {.id = "g"}));

	const auto hits = grep_transcript(t, "/var/log/");
	REQUIRE(hits.size() == 3);
	CHECK(hits[0].seq == 1);
	CHECK(hits[0].field == "input");
	CHECK(hits[1].seq == 2);
	CHECK(hits[1].field == "argument \"path\"");
	CHECK(hits[1].value == "/var/log/" + kEscape);
	CHECK(hits[2].field == "argv");
	CHECK(hits[2].value == "/var/log/" + kEscape);

	const auto verb_hits = grep_transcript(t, "uptim");
	REQUIRE(verb_hits.size() == 3);
	CHECK(verb_hits[1].field == "verb");
	// Output is not searched.
	CHECK(grep_transcript(t, "3 days").empty());
}

TEST_CASE("play frames neutralise output", "[transcript][tools]")
{
	TempDir dir;
	const Transcript t = load(write_session(dir.path(), {.id = "p"}));

	std::string shown;
	for (const auto& frame : playback_frames(t, false)) {
		CHECK(frame.delay.count() >= 0);
		shown += frame.text;
	}
	CHECK_FALSE(contains_terminal_controls(shown));
	CHECK(shown.find("[jead] command \"uptime --since /var/log/\\x1b]0;pwned\\x07\\x1b[2J\"\n") != std::string::npos);
	CHECK(shown.find("up 3 days\n\\x1b]0;pwned") != std::string::npos);
	CHECK(shown.find("[jead] exit status 0\n") != std::string::npos);
	CHECK(shown.find("[jead] session ended: exit\n") != std::string::npos);

	std::string raw;
	for (const auto& frame : playback_frames(t, true))
		raw += frame.text;
	CHECK(raw.find("up 3 days\n" + kEscape + "\n") != std::string::npos);
	// Notes stay neutralised in raw mode.
	CHECK(raw.find("[jead] command \"uptime --since /var/log/\\x1b") != std::string::npos);
}

TEST_CASE("asciicast export has v2 layout", "[transcript][tools]")
{
	TempDir dir;
	const Transcript t = load(write_session(dir.path(), {.id = "cast"}));

	const std::string cast = export_asciicast(t, false);
	CHECK_FALSE(contains_terminal_controls(cast));
	const auto events = check_asciicast(cast);
	REQUIRE(events.size() == 2);
	CHECK(events[0][1] == "o");
	CHECK(events[0][2] == "up 3 days\r\n\\x1b]0;pwned\\x07\\x1b[2J\r\n");
	CHECK(events[1][1] == "i");
	CHECK(events[1][2] == "q");

	const auto raw_events = check_asciicast(export_asciicast(t, true));
	REQUIRE(raw_events.size() == 2);
	CHECK(raw_events[0][2] == "up 3 days\n" + kEscape + "\n");
}

TEST_CASE("asciicast export keeps the pty size", "[transcript][tools]")
{
	TempDir dir;
	TranscriptHeader h;
	h.session_id = "sized";
	h.pty = true;
	h.columns = 132;
	h.rows = 43;
	auto writer = TranscriptWriter::create(dir.path(), h);
	REQUIRE(writer);
	REQUIRE((*writer)->output(OutputStream::stdout_, as_bytes("wide")));
	REQUIRE((*writer)->resize(80, 25));
	REQUIRE((*writer)->end("exit"));
	const Transcript t = load((*writer)->path());

	const std::string cast = export_asciicast(t, false);
	const auto header = nlohmann::json::parse(cast.substr(0, cast.find('\n')));
	CHECK(header.at("width") == 132);
	CHECK(header.at("height") == 43);
	const auto events = check_asciicast(cast);
	REQUIRE(events.size() == 2);
	CHECK(events[1][1] == "r");
	CHECK(events[1][2] == "80x25");

	const std::string shown = render_timeline(t, verify_transcript_file((*writer)->path()));
	CHECK_THAT(shown, Catch::Contains("with pty 132x43"));
	CHECK_THAT(shown, Catch::Contains("resize     80x25"));
}

TEST_CASE("asciicast raw replaces invalid UTF-8", "[transcript][tools]")
{
	TempDir dir;
	TranscriptHeader h;
	h.session_id = "binary";
	auto writer = TranscriptWriter::create(dir.path(), h);
	REQUIRE(writer);
	REQUIRE((*writer)->output(OutputStream::stdout_, as_bytes("a\xff" "b\xc3\xa9")));
	REQUIRE((*writer)->end("exit"));

	const auto events = check_asciicast(export_asciicast(load((*writer)->path()), true));
	REQUIRE(events.size() == 1);
	CHECK(events[0][2] == "a\xEF\xBF\xBD" "b\xc3\xa9");
}

TEST_CASE("json export describes commands", "[transcript][tools]")
{
	TempDir dir;
	const fs::path path = write_session(dir.path(), {.id = "siem"});
	const std::string text = export_session_json(load(path), verify_transcript_file(path));

	REQUIRE(text.back() == '\n');
	CHECK(text.find('\n') == text.size() - 1);
	for (unsigned char c : text.substr(0, text.size() - 1)) {
		CHECK(c >= 0x20);
		CHECK(c < 0x7F);
	}
	const auto session = nlohmann::json::parse(text);
	CHECK(session.at("session_id") == "siem");
	CHECK(session.at("integrity") == "ok");
	CHECK(session.at("end_reason") == "exit");
	CHECK(session.at("principals").at(1) == nlohmann::json{{"b64", base64_encode(as_bytes("ops" + kEscape))}});
	const auto& commands = session.at("commands");
	REQUIRE(commands.size() == 1);
	CHECK(commands[0].at("verb") == "uptime");
	CHECK(commands[0].at("allowed") == true);
	CHECK(commands[0].at("pid") == 100);
	CHECK(commands[0].at("status") == 0);
	CHECK(commands[0].at("record_output") == "full");
}

TEST_CASE("jea-replay tools from the command line", "[transcript][tools]")
{
	TempDir dir;
	const fs::path sessions = dir.path() / "sessions";
	fs::create_directory(sessions);
	const fs::path ok = write_session(sessions, {.id = "ok"});
	write_session(sessions, {.id = "denied", .key_id = "bob", .verb = "reboot", .allowed = false});
	const fs::path out = dir.path() / "stdout";

	RunResult listed = run_replay({"list", "--outcome", "denied", sessions.string()}, out);
	CHECK(listed.exit_code == 0);
	CHECK(listed.output.find("denied") != std::string::npos);
	CHECK(listed.output.find("\nok ") == std::string::npos);
	listed = run_replay({"list", "--key-id", "alice", "--json", sessions.string()}, out);
	CHECK(listed.exit_code == 0);
	CHECK(nlohmann::json::parse(listed.output).size() == 1);
	listed = run_replay({"list", "--since", "2000-01-01", "--until", "@253402300799", sessions.string()}, out);
	CHECK(listed.exit_code == 0);
	CHECK(listed.output.find("\nok ") != std::string::npos);
	CHECK(listed.output.find("\ndenied ") != std::string::npos);

	CHECK(run_replay({"list", "--since", "yesterday", sessions.string()}, out).exit_code == 2);
	CHECK(run_replay({"list", "--outcome", "lost", sessions.string()}, out).exit_code == 2);
	CHECK(run_replay({"list", "--role", "a", "--role", "b", sessions.string()}, out).exit_code == 2);
	CHECK(run_replay({"list", "--serial", "x1", sessions.string()}, out).exit_code == 2);

	const RunResult grep = run_replay({"grep", "reboot", sessions.string()}, out);
	CHECK(grep.exit_code == 0);
	CHECK(grep.output.find((sessions / "denied.jsonl").string() + ":1: input \"reboot --since") != std::string::npos);
	CHECK(grep.output.find((sessions / "denied.jsonl").string() + ":2: verb \"reboot\"\n") != std::string::npos);
	CHECK_FALSE(contains_terminal_controls(grep.output));
	CHECK(run_replay({"grep", "no such text", sessions.string()}, out).exit_code == 1);
	CHECK(run_replay({"grep", sessions.string()}, out).exit_code == 2);

	const RunResult played = run_replay({"play", "--speed", "1000", "--pause-max", "0", ok.string()}, out);
	CHECK(played.exit_code == 0);
	CHECK(played.output.find("up 3 days\n") != std::string::npos);
	CHECK_FALSE(contains_terminal_controls(played.output));
	CHECK(run_replay({"play", "--speed", "0", ok.string()}, out).exit_code == 2);

	const RunResult cast = run_replay({"export", "--format", "asciicast", ok.string()}, out);
	CHECK(cast.exit_code == 0);
	CHECK(check_asciicast(cast.output).size() == 2);
	const RunResult json = run_replay({"export", "--format", "json", sessions.string()}, out);
	CHECK(json.exit_code == 0);
	std::istringstream lines(json.output);
	std::size_t count = 0;
	for (std::string line; std::getline(lines, line); ++count)
		CHECK(nlohmann::json::parse(line).contains("commands"));
	CHECK(count == 2);
	CHECK(run_replay({"export", "--format", "asciicast", sessions.string()}, out).exit_code == 2);
	CHECK(run_replay({"export", "--format", "mp4", ok.string()}, out).exit_code == 2);
}

TEST_CASE("asciinema cat plays the export", "[transcript][tools]")
{
	// asciinema 2.2 (Debian's package) opens /dev/tty, so script(1)
	// provides a pseudo-terminal.
	if (!fs::exists("/usr/bin/asciinema") || !fs::exists("/usr/bin/script")) {
		WARN("asciinema or script is not installed; the schema checks above still run");
		return;
	}
	TempDir dir;
	const fs::path path = write_session(dir.path(), {.id = "played"});
	const fs::path cast = dir.path() / "played.cast";
	REQUIRE(run_replay({"export", "--format", "asciicast", path.string()}, cast).exit_code == 0);

	const RunResult played =
		run_program({"/usr/bin/script", "-qec", "asciinema cat " + cast.string(), "/dev/null"}, dir.path() / "out");
	CHECK(played.exit_code == 0);
	CHECK(played.output == "up 3 days\r\n\\x1b]0;pwned\\x07\\x1b[2J\r\n");
}
