// Recording modes of TranscriptWriter (full, head-tail, digest), the
// size limit with its truncated record, and how the reader, the verifier
// and `jea-replay show` handle the format 2 records.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "roles/role.h"
#include "transcripts/reader.h"
#include "transcripts/record_format.h"
#include "transcripts/render.h"
#include "transcripts/verify.h"
#include "transcripts/writer.h"

namespace fs = std::filesystem;
using namespace jead;
using transcript::DataStream;

namespace {

class TempDir {
public:
	TempDir()
	{
		std::string pattern = (fs::temp_directory_path() / "jead-recording-test-XXXXXX").string();
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

TranscriptHeader header(std::string session_id)
{
	TranscriptHeader h;
	h.session_id = std::move(session_id);
	h.host = "db1";
	h.role = "dba";
	h.key_id = "alice";
	h.mode = "exec";
	return h;
}

DecisionRecord allowed(std::string verb)
{
	DecisionRecord d;
	d.allowed = true;
	d.reason = "allowed";
	d.verb = std::move(verb);
	d.argv = {"/usr/bin/" + d.verb};
	d.run_as = "nobody";
	return d;
}

// Bytes that are not all one value, so a wrong offset changes the digest.
std::string pattern_bytes(std::size_t size)
{
	std::string bytes;
	bytes.reserve(size);
	for (std::size_t i = 0; i < size; ++i)
		bytes += static_cast<char>('a' + (i * 7) % 26);
	return bytes;
}

std::string sha256_hex(std::string_view bytes)
{
	return hex_encode(sha256(as_bytes(bytes)));
}

std::string read_file(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

template <typename T>
std::vector<T> records_of(const Transcript& transcript)
{
	std::vector<T> found;
	for (const auto& record : transcript.records)
		if (const auto* body = std::get_if<T>(&record.body))
			found.push_back(*body);
	return found;
}

std::string output_data(const Transcript& transcript, OutputStream stream)
{
	std::string data;
	for (const auto& output : records_of<OutputRecord>(transcript))
		if (output.stream == stream)
			data += output.data;
	return data;
}

StreamRecording mode(StreamRecording::Mode mode, std::uint64_t head = 64 * 1024, std::uint64_t tail = 64 * 1024)
{
	StreamRecording recording;
	recording.mode = mode;
	recording.head_bytes = head;
	recording.tail_bytes = tail;
	return recording;
}

}  // namespace

TEST_CASE("head-tail keeps head, tail and digest", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("head-tail"));
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	const std::string data = pattern_bytes(100 * 1024);

	REQUIRE(w.decision(allowed("cat")));
	REQUIRE(w.begin_command(mode(StreamRecording::Mode::head_tail, 1000, 40 * 1024), {}));
	REQUIRE(w.process_start(7));
	// Uneven chunks cross the head and wrap the tail ring several times.
	for (std::size_t at = 0; at < data.size(); at += 3001)
		REQUIRE(w.output(OutputStream::stdout_, as_bytes(std::string_view(data).substr(at, 3001))));
	REQUIRE(w.output(OutputStream::stderr_, as_bytes("short\n")));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(5), data.size() + 6));
	REQUIRE(w.end("exit"));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	CHECK(output_data(*transcript, OutputStream::stdout_) == data.substr(0, 1000));
	CHECK(output_data(*transcript, OutputStream::stderr_) == "short\n");

	const auto recording = records_of<RecordingRecord>(*transcript);
	REQUIRE(recording.size() == 1);
	CHECK(recording[0].output.mode == StreamRecording::Mode::head_tail);
	CHECK(recording[0].output.head_bytes == 1000);
	CHECK(recording[0].output.tail_bytes == 40 * 1024);
	CHECK(recording[0].input.mode == StreamRecording::Mode::full);

	// The 40 KiB tail is split over two records; the first carries the gap.
	const auto tails = records_of<TailRecord>(*transcript);
	REQUIRE(tails.size() == 2);
	CHECK(tails[0].stream == DataStream::stdout_);
	CHECK(tails[0].skipped == data.size() - 1000 - 40 * 1024);
	CHECK(tails[1].skipped == 0);
	CHECK(tails[0].data + tails[1].data == data.substr(data.size() - 40 * 1024));

	// Both output streams get a digest of everything, stdin (full) none.
	const auto digests = records_of<DigestRecord>(*transcript);
	REQUIRE(digests.size() == 2);
	CHECK(digests[0].stream == DataStream::stdout_);
	CHECK(digests[0].offset == 0);
	CHECK(digests[0].bytes == data.size());
	CHECK(digests[0].sha256 == sha256_hex(data));
	CHECK(digests[1].stream == DataStream::stderr_);
	CHECK(digests[1].sha256 == sha256_hex("short\n"));

	// Tail and digest records come right before process_exit.
	const auto& records = transcript->records;
	const std::size_t exit_at = records.size() - 2;
	CHECK(std::holds_alternative<ProcessExitRecord>(records[exit_at].body));
	CHECK(std::holds_alternative<DigestRecord>(records[exit_at - 1].body));
	CHECK(verify_transcript_file(w.path()).status == VerifyStatus::ok);
}

TEST_CASE("head-tail without overflow skips nothing", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("small"));
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	REQUIRE(w.begin_command(mode(StreamRecording::Mode::head_tail, 4, 100), {}));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("0123456789")));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), 10));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	CHECK(output_data(*transcript, OutputStream::stdout_) == "0123");
	const auto tails = records_of<TailRecord>(*transcript);
	REQUIRE(tails.size() == 1);
	CHECK(tails[0].skipped == 0);
	CHECK(tails[0].data == "456789");
}

TEST_CASE("digest mode writes no data", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("digest"));
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	const std::string data = pattern_bytes(70000);
	const std::string input = "secret input\n";

	REQUIRE(w.begin_command(mode(StreamRecording::Mode::digest), mode(StreamRecording::Mode::digest)));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes(data)));
	REQUIRE(w.stdin_data(as_bytes(input)));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), data.size()));
	// After process_exit the session streams are full again.
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("help text\n")));
	REQUIRE(w.end("exit"));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	CHECK(records_of<StdinRecord>(*transcript).empty());
	CHECK(output_data(*transcript, OutputStream::stdout_) == "help text\n");
	CHECK(read_file(w.path()).find("secret") == std::string::npos);

	const auto digests = records_of<DigestRecord>(*transcript);
	REQUIRE(digests.size() == 3);
	CHECK(digests[0].stream == DataStream::stdout_);
	CHECK(digests[0].bytes == data.size());
	CHECK(digests[0].sha256 == sha256_hex(data));
	CHECK(digests[1].stream == DataStream::stderr_);
	CHECK(digests[1].bytes == 0);
	CHECK(digests[1].sha256 == sha256_hex(""));
	CHECK(digests[2].stream == DataStream::stdin_);
	CHECK(digests[2].sha256 == sha256_hex(input));
}

TEST_CASE("stdin is recorded in full by default", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("stdin"));
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	const std::string input = pattern_bytes(40000) + std::string("\0\x01", 2);
	REQUIRE(w.begin_command({}, {}));
	REQUIRE(w.stdin_data(as_bytes(input)));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), 0));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	std::string joined;
	for (const auto& record : records_of<StdinRecord>(*transcript))
		joined += record.data;
	CHECK(joined == input);
	CHECK(records_of<DigestRecord>(*transcript).empty());
}

TEST_CASE("begin_command rejects misuse", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("misuse"));
	REQUIRE(writer);
	TranscriptWriter& w = **writer;

	auto too_long = w.begin_command(mode(StreamRecording::Mode::head_tail, 0, StreamRecording::kMaxTailBytes + 1), {});
	REQUIRE_FALSE(too_long);
	CHECK(too_long.error().code == Errc::invalid);
	CHECK(too_long.error().message == "a tail of 16777217 bytes exceeds the limit of 16777216 bytes");

	REQUIRE(w.begin_command({}, {}));
	auto twice = w.begin_command({}, {});
	REQUIRE_FALSE(twice);
	CHECK(twice.error().code == Errc::invalid);
	// Neither failure poisons the writer.
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), 0));
	REQUIRE(w.begin_command({}, {}));
}

TEST_CASE("size limit truncates to digests", "[transcript][recording]")
{
	TempDir dir;
	TranscriptOptions options;
	options.max_bytes = 20000;
	auto writer = TranscriptWriter::create(dir.path(), header("capped"), options);
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	const std::string data = pattern_bytes(50000);

	REQUIRE(w.input("cat big"));
	REQUIRE(w.decision(allowed("cat")));
	REQUIRE(w.begin_command({}, {}));
	REQUIRE(w.process_start(9));
	// 5000-byte chunks: three fit below 20000 bytes, the fourth does not.
	for (std::size_t at = 0; at < data.size(); at += 5000)
		REQUIRE(w.output(OutputStream::stdout_, as_bytes(std::string_view(data).substr(at, 5000))));
	REQUIRE(w.keystrokes("typed after the limit"));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), data.size()));
	// Later commands and records that always go in still work.
	REQUIRE(w.input("cat small"));
	REQUIRE(w.decision(allowed("cat")));
	REQUIRE(w.begin_command({}, {}));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("more\n")));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), 5));
	REQUIRE(w.end("exit"));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	const std::string recorded = output_data(*transcript, OutputStream::stdout_);
	CHECK(recorded == data.substr(0, 15000));

	const auto truncated = records_of<TruncatedRecord>(*transcript);
	REQUIRE(truncated.size() == 1);
	CHECK(truncated[0].limit == 20000);
	CHECK(truncated[0].size <= 20000);
	CHECK(truncated[0].record == "output");
	CHECK(truncated[0].stream == DataStream::stdout_);

	// The first command's stdout digest covers what was not recorded; the
	// keystrokes get a session digest at the end.
	// Streams that got no bytes after the limit have no digest.
	const auto digests = records_of<DigestRecord>(*transcript);
	REQUIRE(digests.size() == 3);
	CHECK(digests[0].stream == DataStream::stdout_);
	CHECK(digests[0].offset == 15000);
	CHECK(digests[0].bytes == data.size() - 15000);
	CHECK(digests[0].sha256 == sha256_hex(data.substr(15000)));
	CHECK(digests[1].stream == DataStream::stdout_);
	CHECK(digests[1].offset == 0);
	CHECK(digests[1].sha256 == sha256_hex("more\n"));
	CHECK(digests[2].stream == DataStream::keystrokes);
	CHECK(digests[2].sha256 == sha256_hex("typed after the limit"));

	CHECK(records_of<DecisionRecord>(*transcript).size() == 2);
	CHECK(records_of<ProcessExitRecord>(*transcript).size() == 2);
	CHECK(std::holds_alternative<EndRecord>(transcript->records.back().body));

	const VerifyResult verified = verify_transcript_file(w.path());
	CHECK(verified.status == VerifyStatus::ok);
	CHECK(verified.truncated);
	// Slack: only records that always go in were written past the limit.
	CHECK(fs::file_size(w.path()) < 20000 + 4000);
}

TEST_CASE("verify rejects data after truncation", "[transcript][recording]")
{
	TempDir dir;
	TranscriptOptions options;
	options.max_bytes = 2000;
	auto writer = TranscriptWriter::create(dir.path(), header("after-cut"), options);
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	REQUIRE(w.output(OutputStream::stdout_, as_bytes(pattern_bytes(3000))));
	REQUIRE(w.end("exit"));

	// Rewrite the chain with an output record after the truncated record.
	std::vector<std::string> lines;
	std::istringstream in(read_file(w.path()));
	for (std::string line; std::getline(in, line);)
		lines.push_back(line);
	REQUIRE(lines.size() == 4);  // header, truncated, digest, end
	auto extra = nlohmann::ordered_json::parse(lines[2]);
	extra["type"] = "output";
	extra.erase("offset");
	extra.erase("bytes");
	extra.erase("sha256");
	extra["data"] = "x";
	lines.insert(lines.begin() + 2, extra.dump());
	for (std::size_t i = 1; i < lines.size(); ++i) {
		auto record = nlohmann::ordered_json::parse(lines[i]);
		record["seq"] = i;
		record["prev"] = transcript::line_hash(lines[i - 1]);
		lines[i] = record.dump();
	}
	std::string content;
	for (const auto& line : lines)
		content += line + "\n";

	const VerifyResult verified = verify_transcript(content, "t");
	CHECK(verified.status == VerifyStatus::tampered);
	CHECK(verified.bad_seq == 2);
	CHECK(verified.detail == "line 3: output record after the truncated record");
}

TEST_CASE("format 1 rejects format 2 records", "[transcript][recording]")
{
	TempDir dir;
	auto writer = TranscriptWriter::create(dir.path(), header("v1"));
	REQUIRE(writer);
	REQUIRE((*writer)->begin_command({}, {}));
	std::string content = read_file((*writer)->path());
	const auto at = content.find("\"format\":3");
	REQUIRE(at != std::string::npos);
	content.replace(at, 10, "\"format\":1");
	// The format 3 header fields go too.
	const std::string_view break_glass = ",\"break_glass\":false,\"columns\":0,\"rows\":0";
	const auto field = content.find(break_glass);
	REQUIRE(field != std::string::npos);
	content.erase(field, break_glass.size());

	auto parsed = parse_transcript(content, "t");
	REQUIRE_FALSE(parsed);
	CHECK(parsed.error().message == "t:2: unknown record type \"recording\" in a format 1 transcript");
}

TEST_CASE("show renders format 2 records", "[transcript][recording]")
{
	TempDir dir;
	TranscriptOptions options;
	options.max_bytes = 3000;
	auto writer = TranscriptWriter::create(dir.path(), header("shown"), options);
	REQUIRE(writer);
	TranscriptWriter& w = **writer;
	REQUIRE(w.begin_command(mode(StreamRecording::Mode::head_tail, 4, 3), mode(StreamRecording::Mode::full)));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes("head\x1b[2Jmiddle-tail")));
	REQUIRE(w.stdin_data(as_bytes("typed\n")));
	REQUIRE(w.process_exit(0, 0, std::chrono::milliseconds(1), 19));
	REQUIRE(w.output(OutputStream::stdout_, as_bytes(pattern_bytes(4000))));
	REQUIRE(w.end("exit"));

	auto transcript = read_transcript(w.path());
	REQUIRE(transcript);
	const std::string text = render_timeline(*transcript, verify_transcript_file(w.path()));
	CHECK(text.find("recording  output head-tail (head 4 bytes, tail 3 bytes), stdin full\n") != std::string::npos);
	CHECK(text.find("stdin      6 bytes\n    | typed\n") != std::string::npos);
	CHECK(text.find("tail       stdout, 12 bytes not recorded before these 3 bytes\n    | ail\n") !=
	      std::string::npos);
	CHECK(text.find("digest     stdout 19 bytes, sha256 " + sha256_hex("head\x1b[2Jmiddle-tail") + "\n") !=
	      std::string::npos);
	CHECK(text.find("truncated  the transcript reached its limit of 3000 bytes at ") != std::string::npos);
	CHECK(text.find("digest     stdout 4000 bytes, sha256 ") != std::string::npos);
}

TEST_CASE("role keys select the recording", "[transcript][recording]")
{
	const std::string role_text = R"(
[[verb]]
name = "dump"
command = ["/usr/bin/pg_dump"]
record_output = "head-tail"
record_head = "1K"
record_tail = "2M"

[[verb]]
name = "load"
command = ["/usr/bin/psql"]
stdin = true
record_output = "digest"
record_stdin = "digest"

[[verb]]
name = "plain"
command = ["/usr/bin/uptime"]
)";
	auto role = parse_role(role_text, "/etc/jead/roles/dba.toml");
	REQUIRE(role);
	const Verb* dump = role->find_verb("dump");
	REQUIRE(dump != nullptr);
	CHECK(dump->record_output == RecordMode::head_tail);
	CHECK(dump->record_stdin == RecordMode::full);
	CHECK(dump->record_head_bytes == 1024);
	CHECK(dump->record_tail_bytes == 2 * 1024 * 1024);
	const Verb* load = role->find_verb("load");
	REQUIRE(load != nullptr);
	CHECK(load->record_output == RecordMode::digest);
	CHECK(load->record_stdin == RecordMode::digest);
	const Verb* plain = role->find_verb("plain");
	REQUIRE(plain != nullptr);
	CHECK(plain->record_output == RecordMode::full);
	CHECK(plain->record_stdin == RecordMode::full);
	CHECK(plain->record_head_bytes == 64 * 1024);
	CHECK(plain->record_tail_bytes == 64 * 1024);
}

TEST_CASE("role keys reject bad recording", "[transcript][recording]")
{
	struct Case {
		std::string keys;
		std::string error;
	};
	const std::vector<Case> cases = {
		{"record_output = \"some\"", "\"record_output\" must be \"full\", \"head-tail\" or \"digest\", not \"some\""},
		{"record_stdin = \"digest\"", "\"record_stdin\" of verb \"v\" needs stdin = true"},
		{"record_head = \"1K\"", "\"record_head\" of verb \"v\" needs record_output or record_stdin = \"head-tail\""},
		{"record_output = \"head-tail\"\nrecord_tail = \"17M\"", "\"record_tail\" of verb \"v\" must be at most 16M"},
	};
	for (const auto& c : cases) {
		INFO(c.keys);
		const std::string text = "[[verb]]\nname = \"v\"\ncommand = [\"/bin/true\"]\n" + c.keys + "\n";
		auto role = parse_role(text, "/etc/jead/roles/r.toml");
		REQUIRE_FALSE(role);
		CHECK(role.error().message.find(c.error) != std::string::npos);
	}
}
