// TranscriptWriter: file creation, record layout, durability contract and
// write errors. Round trips through the reader are in transcript_reader_test.cc.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "transcripts/record_format.h"
#include "transcripts/writer.h"

namespace fs = std::filesystem;
using jead::TranscriptHeader;
using jead::TranscriptWriter;

namespace {

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
public:
	TempDir()
	{
		std::string pattern = (fs::temp_directory_path() / "jead-writer-test-XXXXXX").string();
		REQUIRE(::mkdtemp(pattern.data()) != nullptr);
		path_ = pattern;
	}
	~TempDir()
	{
		std::error_code ignored;
		fs::permissions(path_, fs::perms::owner_all, ignored);
		fs::remove_all(path_, ignored);
	}
	const fs::path& path() const { return path_; }

private:
	fs::path path_;
};

TranscriptHeader sample_header(std::string session_id = "s-1")
{
	TranscriptHeader h;
	h.session_id = std::move(session_id);
	h.host = "db1";
	h.jead_version = "0.1.0";
	h.start_time = 1733342820;
	h.client_address = "192.0.2.7";
	h.client_port = 50022;
	h.role = "dba";
	h.key_id = "alice@example.com";
	h.serial = 42;
	h.principals = {"alice", "dba"};
	h.ca_fingerprint = "SHA256:ca";
	h.user_fingerprint = "SHA256:user";
	h.valid_after = 1733340000;
	h.valid_before = 1733350000;
	h.mode = "exec";
	h.pty = false;
	h.policy_version = "p1";
	return h;
}

std::vector<std::string> read_lines(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::vector<std::string> lines;
	std::string line;
	while (std::getline(in, line))
		lines.push_back(line);
	return lines;
}

std::string read_file(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

nlohmann::json parse(const std::string& line)
{
	return nlohmann::json::parse(line);
}

}  // namespace

TEST_CASE("writer creates file with mode 0600", "[transcript][writer]")
{
	TempDir dir;
	const mode_t old_umask = ::umask(0);
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	::umask(old_umask);
	REQUIRE(writer);

	const fs::path expected = dir.path() / "s-1.jsonl";
	CHECK((*writer)->path() == expected);
	struct stat st {};
	REQUIRE(::stat(expected.c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("writer does not overwrite an existing file", "[transcript][writer]")
{
	TempDir dir;
	const fs::path existing = dir.path() / "s-1.jsonl";
	{
		std::ofstream out(existing);
		out << "keep me\n";
	}

	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE_FALSE(writer);
	CHECK(writer.error().code == jead::Errc::io);
	CHECK(writer.error().message == "create transcript " + existing.string() + " failed: File exists");
	CHECK(read_file(existing) == "keep me\n");
}

TEST_CASE("writer does not follow a symlink", "[transcript][writer]")
{
	TempDir dir;
	const fs::path target = dir.path() / "target";
	{
		std::ofstream out(target);
		out << "target\n";
	}
	fs::create_symlink(target, dir.path() / "s-1.jsonl");

	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE_FALSE(writer);
	CHECK(writer.error().code == jead::Errc::io);
	CHECK(read_file(target) == "target\n");
}

TEST_CASE("writer rejects unsafe session ids", "[transcript][writer]")
{
	TempDir dir;
	for (const char* id : {"", ".", "..", "../x", "a/b", "a b", "a\nb"}) {
		INFO("session id: " << id);
		auto writer = TranscriptWriter::create(dir.path(), sample_header(id));
		REQUIRE_FALSE(writer);
		CHECK(writer.error().code == jead::Errc::invalid);
	}
	CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("writer header carries every field", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);

	// The header is on disk before create() returns.
	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 1);
	const auto h = parse(lines[0]);
	CHECK(h["seq"] == 0);
	CHECK(h["t"] == 0);
	CHECK(h["type"] == "header");
	CHECK(h["prev"] == std::string(jead::transcript::kZeroHash));
	CHECK(h["format"] == 3);
	CHECK(h["time"].get<std::string>().size() == 24);
	CHECK(h["time"].get<std::string>().back() == 'Z');
	CHECK(h["session_id"] == "s-1");
	CHECK(h["host"] == "db1");
	CHECK(h["jead_version"] == "0.1.0");
	CHECK(h["start_time"] == 1733342820);
	CHECK(h["client_address"] == "192.0.2.7");
	CHECK(h["client_port"] == 50022);
	CHECK(h["role"] == "dba");
	CHECK(h["key_id"] == "alice@example.com");
	CHECK(h["serial"] == 42);
	CHECK(h["principals"] == nlohmann::json::array({"alice", "dba"}));
	CHECK(h["ca_fingerprint"] == "SHA256:ca");
	CHECK(h["user_fingerprint"] == "SHA256:user");
	CHECK(h["valid_after"] == 1733340000);
	CHECK(h["valid_before"] == 1733350000);
	CHECK(h["mode"] == "exec");
	CHECK(h["pty"] == false);
	CHECK(h["policy_version"] == "p1");
	CHECK(h["break_glass"] == false);
}

TEST_CASE("writer chains records by SHA-256", "[transcript][writer]")
{
	TempDir dir;
	jead::TranscriptOptions options;
	options.previous_end_hash = std::string(64, 'a');
	auto writer = TranscriptWriter::create(dir.path(), sample_header(), options);
	REQUIRE(writer);
	REQUIRE((*writer)->input("uptime"));
	REQUIRE((*writer)->end("client-closed"));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 3);
	CHECK(parse(lines[0])["prev"] == std::string(64, 'a'));
	for (std::size_t i = 1; i < lines.size(); ++i) {
		INFO("line " << i);
		CHECK(parse(lines[i])["seq"] == i);
		CHECK(parse(lines[i])["prev"] == jead::transcript::line_hash(lines[i - 1]));
	}
	CHECK((*writer)->last_hash() == jead::transcript::line_hash(lines[2]));
}

TEST_CASE("writer encodes invalid UTF-8 as base64", "[transcript][writer]")
{
	TempDir dir;
	auto header = sample_header();
	header.key_id = std::string("bad\xff", 4);
	auto writer = TranscriptWriter::create(dir.path(), header);
	REQUIRE(writer);
	const std::string bytes("\x00\x01\xfe\xff", 4);
	REQUIRE((*writer)->output(jead::OutputStream::stderr_, jead::as_bytes(bytes)));
	REQUIRE((*writer)->input("caf\xc3\xa9"));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 3);
	CHECK(parse(lines[0])["key_id"] == nlohmann::json{{"b64", "YmFk/w=="}});
	CHECK(parse(lines[1])["stream"] == "stderr");
	CHECK(parse(lines[1])["data"] == nlohmann::json{{"b64", "AAH+/w=="}});
	CHECK(parse(lines[2])["line"] == "caf\xc3\xa9");
}

TEST_CASE("writer stores control bytes as base64", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	const std::string zeros(32 * 1024, '\0');
	const std::string text = "total 8\r\n\tcaf\xc3\xa9 \"quoted\" a\\b\n";
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes(zeros)));
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes(text)));
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes("red \x1b[31mtext\n")));
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes("\n")));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 5);
	CHECK(parse(lines[1])["data"] == nlohmann::json{{"b64", jead::base64_encode(jead::as_bytes(zeros))}});
	// 32 KiB of zeros take 4/3 of their size plus the record's own fields.
	CHECK(lines[1].size() < 32 * 1024 * 4 / 3 + 200);
	CHECK(parse(lines[2])["data"] == text);
	CHECK(parse(lines[3])["data"] == nlohmann::json{{"b64", jead::base64_encode(jead::as_bytes("red \x1b[31mtext\n"))}});
	CHECK(parse(lines[4])["data"] == "\n");
}

TEST_CASE("writer chooses the shorter form for escapes", "[transcript][writer]")
{
	using jead::transcript::fits_json_string;
	CHECK(fits_json_string(""));
	CHECK(fits_json_string("\n"));
	CHECK(fits_json_string("plain text\n"));
	CHECK(fits_json_string("caf\xc3\xa9\x7f"));
	CHECK_FALSE(fits_json_string(std::string(1, '\0')));
	CHECK_FALSE(fits_json_string("\x1b"));
	CHECK_FALSE(fits_json_string("bad\xff"));
	// 40 quotes: 82 bytes as a string, 66 as base64 in its object.
	CHECK_FALSE(fits_json_string(std::string(40, '"')));
	CHECK(fits_json_string(std::string(40, '"') + std::string(100, 'x')));
}

TEST_CASE("writer serializes bytes as nlohmann does", "[transcript][writer]")
{
	const std::vector<std::string> cases = {
		"",
		"plain",
		"tab\tline\nreturn\r quote\" backslash\\ slash/ del\x7f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		std::string("nul\0", 4),
		"esc\x1b[0m",
		"bad\xff",
		std::string(40, '"'),
	};
	for (const auto& bytes : cases) {
		INFO("case of " << bytes.size() << " bytes");
		std::string out = "prefix";
		jead::transcript::append_json_bytes(out, bytes);
		CHECK(out == "prefix" + jead::transcript::encode_bytes(bytes).dump());
	}
}

TEST_CASE("writer splits output at 32 KiB", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	const std::string data(80 * 1024, 'x');
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes(data)));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 4);
	CHECK(parse(lines[1])["data"].get<std::string>().size() == 32 * 1024);
	CHECK(parse(lines[2])["data"].get<std::string>().size() == 32 * 1024);
	CHECK(parse(lines[3])["data"].get<std::string>().size() == 16 * 1024);
}

TEST_CASE("writer splits output between UTF-8 characters", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	// 32767 ASCII bytes, then a 2-byte character across the 32 KiB boundary.
	std::string data(32 * 1024 - 1, 'x');
	data += "\xc3\xa9tail";
	REQUIRE((*writer)->output(jead::OutputStream::stdout_, jead::as_bytes(data)));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 3);
	CHECK(parse(lines[1])["data"].get<std::string>() == std::string(32 * 1024 - 1, 'x'));
	CHECK(parse(lines[2])["data"].get<std::string>() == "\xc3\xa9tail");
}

TEST_CASE("writer records exit status or signal", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	REQUIRE((*writer)->process_exit(3, 0, std::chrono::milliseconds(1500), 10, ""));
	REQUIRE((*writer)->process_exit(0, 9, std::chrono::milliseconds(20), 0, "killed after timeout"));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 3);
	const auto exited = parse(lines[1]);
	CHECK(exited["status"] == 3);
	CHECK_FALSE(exited.contains("signal"));
	CHECK(exited["duration_ms"] == 1500);
	CHECK(exited["bytes_out"] == 10);
	const auto killed = parse(lines[2]);
	CHECK(killed["signal"] == 9);
	CHECK_FALSE(killed.contains("status"));
	CHECK(killed["note"] == "killed after timeout");
}

TEST_CASE("writer rejects records after end", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	REQUIRE((*writer)->end("exit"));

	auto late = (*writer)->input("uptime");
	REQUIRE_FALSE(late);
	CHECK(late.error().code == jead::Errc::internal);
	CHECK(read_lines((*writer)->path()).size() == 2);
}

TEST_CASE("writer rejects unknown end reason", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);

	auto bad = (*writer)->end("finished");
	REQUIRE_FALSE(bad);
	CHECK(bad.error().code == jead::Errc::invalid);
	// The writer stays usable so the caller can end with a valid reason.
	REQUIRE((*writer)->end("error"));
	CHECK(parse(read_lines((*writer)->path()).back())["reason"] == "error");
}

TEST_CASE("writer seals transcript on destruction", "[transcript][writer]")
{
	TempDir dir;
	fs::path path;
	{
		auto writer = TranscriptWriter::create(dir.path(), sample_header());
		REQUIRE(writer);
		path = (*writer)->path();
		REQUIRE((*writer)->input("uptime"));
	}
	const auto lines = read_lines(path);
	REQUIRE(lines.size() == 3);
	CHECK(parse(lines[2])["type"] == "end");
	CHECK(parse(lines[2])["reason"] == "abnormal");
}

TEST_CASE("writer reports a read-only directory", "[transcript][writer]")
{
	TempDir dir;
	// Only `readonly` may stop the child below, not the 0700 temp dir.
	fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
	                                fs::perms::others_read | fs::perms::others_exec);
	const fs::path readonly = dir.path() / "readonly";
	fs::create_directory(readonly);
	fs::permissions(readonly, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
	                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
	const std::string expected =
		"create transcript " + (readonly / "s-1.jsonl").string() + " failed: Permission denied";

	if (::geteuid() != 0) {
		auto writer = TranscriptWriter::create(readonly, sample_header());
		REQUIRE_FALSE(writer);
		CHECK(writer.error().code == jead::Errc::io);
		CHECK(writer.error().message == expected);
		return;
	}

	// root ignores directory permissions, so try from a child that drops to
	// the "nobody" user and sends the error message back through a pipe.
	int pipe_fds[2];
	REQUIRE(::pipe(pipe_fds) == 0);
	const pid_t child = ::fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		::close(pipe_fds[0]);
		if (::setgid(65534) != 0 || ::setuid(65534) != 0)
			::_exit(3);
		auto writer = TranscriptWriter::create(readonly, sample_header());
		const std::string message = writer ? "created" : writer.error().message;
		const ssize_t n = ::write(pipe_fds[1], message.data(), message.size());
		::_exit(n == static_cast<ssize_t>(message.size()) ? 0 : 4);
	}
	::close(pipe_fds[1]);
	std::string message;
	char buffer[512];
	for (int i = 0; i < 64; ++i) {
		const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
		if (n <= 0)
			break;
		message.append(buffer, static_cast<std::size_t>(n));
	}
	::close(pipe_fds[0]);
	int status = 0;
	REQUIRE(::waitpid(child, &status, 0) == child);
	REQUIRE(WIFEXITED(status));
	REQUIRE(WEXITSTATUS(status) == 0);
	CHECK(message == expected);
	CHECK(fs::is_empty(readonly));
}

TEST_CASE("writer reports a failed write and stops", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	const auto size_after_header = fs::file_size((*writer)->path());

	// A file size limit makes the next large write fail with EFBIG, which
	// works for root too. SIGXFSZ would otherwise kill the test process.
	struct rlimit old_limit {};
	REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
	struct rlimit small_limit = old_limit;
	small_limit.rlim_cur = size_after_header + 100;
	auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
	REQUIRE(::setrlimit(RLIMIT_FSIZE, &small_limit) == 0);

	const std::string data(1000, 'x');
	auto failed = (*writer)->output(jead::OutputStream::stdout_, jead::as_bytes(data));
	auto after = (*writer)->input("uptime");

	REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
	::signal(SIGXFSZ, old_handler);

	REQUIRE_FALSE(failed);
	CHECK(failed.error().code == jead::Errc::io);
	CHECK(failed.error().message ==
	      "write to transcript " + (*writer)->path().string() + " failed: File too large");
	REQUIRE_FALSE(after);
	CHECK(after.error().code == jead::Errc::io);
	CHECK(after.error().message.find("rejects records after an earlier error") != std::string::npos);
	// The end record must not be written either, so the file shows the failure.
	REQUIRE_FALSE((*writer)->end("error"));
}

TEST_CASE("writer records keystrokes and warnings", "[transcript][writer]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), sample_header());
	REQUIRE(writer);
	REQUIRE((*writer)->keystrokes("ls\x1b[A\r"));
	REQUIRE((*writer)->warning("certificate expires in 60 s"));

	const auto lines = read_lines((*writer)->path());
	REQUIRE(lines.size() == 3);
	CHECK(parse(lines[1])["type"] == "keystrokes");
	// ESC is a control byte, so the keystrokes are stored in base64.
	CHECK(parse(lines[1])["data"] == nlohmann::json{{"b64", jead::base64_encode(jead::as_bytes("ls\x1b[A\r"))}});
	CHECK(parse(lines[2])["type"] == "warning");
	CHECK(parse(lines[2])["text"] == "certificate expires in 60 s");
}
