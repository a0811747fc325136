// End to end: verbs with interactive = true run on a pseudo-terminal of
// their own when the client has a pty, and on pipes otherwise.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "transcripts/reader.h"
#include "tests/support.h"

using namespace jead::test;

namespace {

std::string terminal_role()
{
	const std::string program = JEAD_TERMINAL_VERB_BINARY;
	return "description = \"Verbs that may need a terminal\"\n"
	       "\n[[verb]]\nname = \"ask\"\ndescription = \"Prompt for a line\"\n"
	       "command = [\"" + program + "\"]\ninteractive = true\n"
	       "\n[[verb]]\nname = \"ask-resize\"\ndescription = \"Prompt, then wait for a window change\"\n"
	       "command = [\"" + program + "\", \"--wait-resize\"]\ninteractive = true\n"
	       "\n[[verb]]\nname = \"ask-plain\"\ndescription = \"Prompt without a terminal\"\n"
	       "command = [\"" + program + "\"]\n"
	       "\n[[verb]]\nname = \"ask-slow\"\ndescription = \"Prompt, with a short timeout\"\n"
	       "command = [\"" + program + "\"]\ninteractive = true\ntimeout = \"2s\"\n"
	       "\n[[verb]]\nname = \"ask-small\"\ndescription = \"Prompt, with a tiny max_output\"\n"
	       "command = [\"" + program + "\"]\ninteractive = true\nmax_output = \"16\"\n"
	       "\n[[verb]]\nname = \"ask-secret\"\ndescription = \"Prompt, keys not recorded\"\n"
	       "command = [\"" + program + "\"]\ninteractive = true\nrecord_keystrokes = false\n";
}

struct InteractiveFixture {
	TempDir tmp;
	JeadServer server{tmp.path(), {{{"desk", terminal_role()}}, {{"desk", {"ops"}}}, ""}};
	std::filesystem::path key = tmp.path() / "user";
	std::filesystem::path cert;

	InteractiveFixture()
	{
		make_key(key);
		cert = sign_key(server.ca(), key, {});
	}

	// The ssh command line with TERM set to `term` for the client.
	std::vector<std::string> ssh_with_term(const std::string& term, const std::vector<std::string>& options,
	                                       const std::vector<std::string>& command) const
	{
		std::vector<std::string> argv = {"env", "TERM=" + term};
		const auto ssh = ssh_argv(server, "desk", key, cert, options, command);
		argv.insert(argv.end(), ssh.begin(), ssh.end());
		return argv;
	}

	jead::Transcript last_transcript() const
	{
		auto transcript = jead::read_transcript(server.transcripts().back());
		REQUIRE(transcript);
		return std::move(*transcript);
	}
};

std::string keystrokes_of(const jead::Transcript& transcript)
{
	std::string keys;
	for (const auto& record : transcript.records)
		if (const auto* k = std::get_if<jead::KeystrokesRecord>(&record.body))
			keys += k->data;
	return keys;
}

std::string output_of(const jead::Transcript& transcript)
{
	std::string output;
	for (const auto& record : transcript.records)
		if (const auto* o = std::get_if<jead::OutputRecord>(&record.body))
			output += o->data;
	return output;
}

const jead::ProcessExitRecord* exit_of(const jead::Transcript& transcript)
{
	for (const auto& record : transcript.records)
		if (const auto* e = std::get_if<jead::ProcessExitRecord>(&record.body))
			return e;
	return nullptr;
}

}  // namespace

TEST_CASE_METHOD(InteractiveFixture, "interactive verb runs on a terminal", "[integration]")
{
	PtySession pty(ssh_with_term("xterm-256color", {"-tt"}, {"ask"}));

	CHECK(pty.wait_for("isatty 0=1 1=1 2=1"));
	CHECK(pty.wait_for("size 100x30"));
	CHECK(pty.wait_for("term xterm-256color"));
	REQUIRE(pty.wait_for("ready> "));
	pty.send("hello\r");
	CHECK(pty.wait_for("got [hello]"));
	CHECK(pty.wait_exit() == 0);

	const auto transcript = last_transcript();
	CHECK(keystrokes_of(transcript) == "hello\r");
	const std::string output = output_of(transcript);
	CHECK(output.find("isatty 0=1 1=1 2=1\r\n") != std::string::npos);
	CHECK(output.find("ready> hello\r\n") != std::string::npos);   // the terminal's echo
	CHECK(output.find("got [hello]\r\n") != std::string::npos);
	CHECK(server.log().find("on a pseudo-terminal") != std::string::npos);
}

TEST_CASE_METHOD(InteractiveFixture, "interactive verb without pty uses pipes", "[integration]")
{
	const auto result = server.ssh("desk", key, cert, {"ask"}, {"-T"}, "typed\n");

	CHECK(result.exit_status == 0);
	CHECK(result.out.find("isatty 0=0 1=0 2=0\n") != std::string::npos);
	CHECK(result.out.find("size none\n") != std::string::npos);
	CHECK(result.out.find("term dumb\n") != std::string::npos);
	// The verb does not read stdin (stdin = false), so it gets /dev/null.
	CHECK(result.out.find("got nothing\n") != std::string::npos);
}

TEST_CASE_METHOD(InteractiveFixture, "plain verb under pty has no terminal", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {"ask-plain"}));

	CHECK(pty.wait_for("isatty 0=0 1=0 2=0"));
	CHECK(pty.wait_for("term dumb"));
	CHECK(pty.wait_for("got nothing"));
	CHECK(pty.wait_exit() == 0);
}

TEST_CASE_METHOD(InteractiveFixture, "unsafe TERM becomes dumb", "[integration]")
{
	const std::vector<std::string> unsafe = {"xterm;id", "../../tmp/evil", std::string(65, 'x')};
	for (const auto& term : unsafe) {
		INFO(term);
		PtySession pty(ssh_with_term(term, {"-tt"}, {"ask"}));
		CHECK(pty.wait_for("isatty 0=1 1=1 2=1"));
		CHECK(pty.wait_for("term dumb"));
		REQUIRE(pty.wait_for("ready> "));
		pty.send("x\r");
		CHECK(pty.wait_exit() == 0);
	}
}

TEST_CASE_METHOD(InteractiveFixture, "window change reaches the verb", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {"ask-resize"}));

	CHECK(pty.wait_for("size 100x30"));
	REQUIRE(pty.wait_for("ready> "));
	pty.send("go\r");
	REQUIRE(pty.wait_for("got [go]"));
	pty.resize(120, 40);
	CHECK(pty.wait_for("resized 120x40", std::chrono::seconds(20)));
	CHECK(pty.wait_exit() == 0);

	// The transcript keeps both sizes, for replays.
	const auto transcript = last_transcript();
	const auto& header = std::get<jead::HeaderRecord>(transcript.records.front().body).header;
	CHECK(header.columns == 100);
	CHECK(header.rows == 30);
	bool resized = false;
	for (const auto& record : transcript.records)
		if (const auto* r = std::get_if<jead::ResizeRecord>(&record.body))
			resized = resized || (r->columns == 120 && r->rows == 40);
	CHECK(resized);
}

TEST_CASE_METHOD(InteractiveFixture, "interactive verb timeout stops it", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {"ask-slow"}));

	REQUIRE(pty.wait_for("ready> "));
	CHECK(pty.wait_for("timed out after 2 s", std::chrono::seconds(20)));
	CHECK(pty.wait_exit() == 124);

	const auto transcript = last_transcript();
	const auto* exit = exit_of(transcript);
	REQUIRE(exit != nullptr);
	CHECK(exit->signal == SIGTERM);
	CHECK(exit->note == "timed out after 2 s");
}

TEST_CASE_METHOD(InteractiveFixture, "interactive verb max_output stops it", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {"ask-small"}));

	CHECK(pty.wait_for("output exceeded the verb's limit of 16 bytes", std::chrono::seconds(20)));
	CHECK(pty.wait_exit() == 125);

	const auto transcript = last_transcript();
	CHECK(output_of(transcript) == "isatty 0=1 1=1 2");
	const auto* exit = exit_of(transcript);
	REQUIRE(exit != nullptr);
	CHECK(exit->signal == SIGTERM);
}

TEST_CASE_METHOD(InteractiveFixture, "shell runs interactive verb on a terminal", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {}));

	REQUIRE(pty.wait_for("desk ["));
	pty.send("ask\r");
	CHECK(pty.wait_for("isatty 0=1 1=1 2=1"));
	REQUIRE(pty.wait_for("ready> "));
	// A Tab, which the line editor would take for completion, reaches the
	// verb's terminal unchanged while the verb runs.
	pty.send("two\twords\r");
	CHECK(pty.wait_for("got [two\twords]"));
	CHECK(pty.wait_for("desk ["));

	pty.send("ask-plain\r");
	CHECK(pty.wait_for("isatty 0=0 1=0 2=0"));
	CHECK(pty.wait_for("desk ["));
	pty.send("\x04");
	CHECK(pty.wait_exit() != -1);

	const auto transcript = last_transcript();
	CHECK(keystrokes_of(transcript).find("two\twords\r") != std::string::npos);
	CHECK(output_of(transcript).find("got [two\twords]\r\n") != std::string::npos);
}

TEST_CASE_METHOD(InteractiveFixture, "certificate expiry stops interactive verb", "[integration]")
{
	const auto short_key = tmp.path() / "short";
	make_key(short_key);
	CertSpec spec;
	spec.validity = "-1m:+8s";
	const auto short_cert = sign_key(server.ca(), short_key, spec);
	PtySession pty(ssh_argv(server, "desk", short_key, short_cert, {"-tt"}, {"ask"}));

	REQUIRE(pty.wait_for("ready> "));
	CHECK(pty.wait_for("the certificate expired at ", std::chrono::seconds(30)));
	CHECK(pty.wait_exit() == 78);   // the exit status jead gives an expired session

	const auto transcript = last_transcript();
	const auto* exit = exit_of(transcript);
	REQUIRE(exit != nullptr);
	CHECK(exit->signal == SIGTERM);
	const auto* end = std::get_if<jead::EndRecord>(&transcript.records.back().body);
	REQUIRE(end != nullptr);
	CHECK(end->reason == "expired");
}

TEST_CASE_METHOD(InteractiveFixture, "unrecorded keystrokes leave a warning", "[integration]")
{
	PtySession pty(ssh_with_term("xterm", {"-tt"}, {"ask-secret"}));
	REQUIRE(pty.wait_for("ready> "));
	pty.send("s3cret\r");
	CHECK(pty.wait_for("got [s3cret]"));
	CHECK(pty.wait_exit() == 0);

	const auto transcript = last_transcript();
	CHECK(keystrokes_of(transcript).empty());
	bool warned = false;
	for (const auto& record : transcript.records)
		if (const auto* w = std::get_if<jead::WarningRecord>(&record.body))
			warned = warned || w->text.find("record_keystrokes = false") != std::string::npos;
	CHECK(warned);
	// What the terminal showed is still recorded.
	CHECK(output_of(transcript).find("got [s3cret]") != std::string::npos);
}
