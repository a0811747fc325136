// Recovery at server start: seal_abandoned_transcripts() on transcripts cut
// off by a crash, with and without a line cut short, next to live and
// damaged ones, and newest_end_hash() for linking the next session.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <variant>

#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "transcripts/reader.h"
#include "transcripts/record_format.h"
#include "transcripts/recovery.h"
#include "transcripts/signing.h"
#include "transcripts/verify.h"
#include "transcripts/writer.h"

namespace fs = std::filesystem;
using namespace jead;

namespace {

class TempDir {
public:
	TempDir()
	{
		std::string pattern = (fs::temp_directory_path() / "jead-recovery-test-XXXXXX").string();
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

std::string read_file(const fs::path& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

void write_file(const fs::path& path, const std::string& content)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out << content;
}

// Writes a session that started `pid` and stops before process_exit, as a
// crash leaves it: the records so far, without an end. Returns its path.
fs::path write_crashed_session(const fs::path& dir, const std::string& session_id, int pid)
{
	const fs::path scratch = dir / "scratch";
	fs::create_directories(scratch);
	std::string content;
	{
		auto writer = TranscriptWriter::create(scratch, header(session_id));
		REQUIRE(writer);
		REQUIRE((*writer)->input("tail -f /var/log/syslog"));
		DecisionRecord d;
		d.allowed = true;
		d.verb = "tail";
		REQUIRE((*writer)->decision(d));
		REQUIRE((*writer)->process_start(pid));
		REQUIRE((*writer)->output(OutputStream::stdout_, as_bytes("Dec  4 line\n")));
		content = read_file((*writer)->path());
	}
	fs::remove_all(scratch);
	const fs::path path = dir / (session_id + ".jsonl");
	write_file(path, content);
	::chmod(path.c_str(), 0600);
	return path;
}

fs::path write_ed25519_key(const fs::path& dir)
{
	EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
	REQUIRE(key != nullptr);
	const fs::path path = dir / "signing.key";
	FILE* file = std::fopen(path.c_str(), "w");
	REQUIRE(file != nullptr);
	REQUIRE(::chmod(path.c_str(), 0600) == 0);
	REQUIRE(PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
	std::fclose(file);
	FILE* public_file = std::fopen((dir / "signing.pub").c_str(), "w");
	REQUIRE(public_file != nullptr);
	REQUIRE(PEM_write_PUBKEY(public_file, key) == 1);
	std::fclose(public_file);
	EVP_PKEY_free(key);
	return path;
}

const EndRecord& end_record(const Transcript& transcript)
{
	for (auto it = transcript.records.rbegin(); it != transcript.records.rend(); ++it)
		if (const auto* end = std::get_if<EndRecord>(&it->body))
			return *end;
	FAIL("no end record");
	throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("recovery seals a crashed session", "[transcript][recovery]")
{
	TempDir dir;
	const fs::path path = write_crashed_session(dir.path(), "crashed", 4711);
	REQUIRE(verify_transcript_file(path).status == VerifyStatus::unsealed);

	auto outcomes = seal_abandoned_transcripts(dir.path(), {});
	REQUIRE(outcomes);
	REQUIRE(outcomes->size() == 1);
	CHECK(outcomes->at(0).sealed);
	CHECK(outcomes->at(0).message ==
	      path.string() + ": sealed with an abnormal end after seq 4; process 4711 was running");

	const VerifyResult verified = verify_transcript_file(path);
	CHECK(verified.status == VerifyStatus::ok);
	CHECK(verified.end_reason == "abnormal");
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	const EndRecord& end = end_record(*transcript);
	REQUIRE(end.recovery);
	CHECK(end.recovery->last_seq == 4);
	CHECK(end.recovery->running_pid == 4711);
	CHECK(end.recovery->cut_bytes == 0);
	CHECK(transcript->records.back().seq == 5);
	CHECK(transcript->records.back().t_ms >= transcript->records[4].t_ms);

	// A second run finds nothing to do.
	auto again = seal_abandoned_transcripts(dir.path(), {});
	REQUIRE(again);
	CHECK(again->empty());
}

TEST_CASE("recovery moves a cut line aside", "[transcript][recovery]")
{
	TempDir dir;
	const fs::path path = write_crashed_session(dir.path(), "cut", 12);
	const std::string cut = "{\"seq\":5,\"t\":9,\"type\":\"output\",\"prev\":\"00";
	write_file(path, read_file(path) + cut);
	REQUIRE(verify_transcript_file(path).status == VerifyStatus::truncated);

	auto outcomes = seal_abandoned_transcripts(dir.path(), {});
	REQUIRE(outcomes);
	REQUIRE(outcomes->size() == 1);
	CHECK(outcomes->at(0).message == path.string() +
	                                     ": sealed with an abnormal end after seq 4; process 12 was running; " +
	                                     std::to_string(cut.size()) + " bytes of a record cut short moved to cut.jsonl.cut");

	CHECK(read_file(dir.path() / "cut.jsonl.cut") == cut);
	CHECK(verify_transcript_file(path).status == VerifyStatus::ok);
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	const EndRecord& end = end_record(*transcript);
	REQUIRE(end.recovery);
	CHECK(end.recovery->cut_bytes == cut.size());
	CHECK(end.recovery->cut_sha256 == hex_encode(sha256(as_bytes(cut))));
	CHECK(end.recovery->cut_file == "cut.jsonl.cut");
}

TEST_CASE("recovery skips live and damaged files", "[transcript][recovery]")
{
	TempDir dir;
	auto live = TranscriptWriter::create(dir.path(), header("live"));
	REQUIRE(live);
	const fs::path tampered = write_crashed_session(dir.path(), "tampered", 3);
	std::string content = read_file(tampered);
	content[content.find("\"pid\":3") + 6] = '4';
	write_file(tampered, content);
	write_file(dir.path() / "empty.jsonl", "");
	const std::string before = read_file(tampered);

	auto outcomes = seal_abandoned_transcripts(dir.path(), {});
	REQUIRE(outcomes);
	REQUIRE(outcomes->size() == 2);
	CHECK(outcomes->at(0).path == dir.path() / "empty.jsonl");
	CHECK_FALSE(outcomes->at(0).sealed);
	CHECK(outcomes->at(0).message.find(": left as is: no complete header record") != std::string::npos);
	CHECK(outcomes->at(1).path == tampered);
	CHECK_FALSE(outcomes->at(1).sealed);
	CHECK(outcomes->at(1).message.find(": left as is: ") != std::string::npos);
	CHECK(outcomes->at(1).message.find("tampered at seq") != std::string::npos);
	CHECK(read_file(tampered) == before);

	// The live session is untouched and still ends normally.
	REQUIRE((*live)->end("client-closed"));
	CHECK(verify_transcript_file((*live)->path()).end_reason == "client-closed");
}

TEST_CASE("recovery signs the abnormal end", "[transcript][recovery]")
{
	TempDir dir;
	const fs::path keys = dir.path() / "keys";
	fs::create_directory(keys);
	const fs::path key = write_ed25519_key(keys);
	const fs::path sessions = dir.path() / "sessions";
	fs::create_directory(sessions);
	const fs::path path = write_crashed_session(sessions, "signed", 5);

	TranscriptOptions options;
	options.signing_key = key;
	auto outcomes = seal_abandoned_transcripts(sessions, options);
	REQUIRE(outcomes);
	REQUIRE(outcomes->size() == 1);
	CHECK(outcomes->at(0).sealed);

	auto public_key = TranscriptVerifyKey::load(keys / "signing.pub");
	REQUIRE(public_key);
	const VerifyResult verified = verify_transcript_file(path, {}, &*public_key);
	CHECK(verified.status == VerifyStatus::ok);
	CHECK(verified.end_reason == "abnormal");
}

TEST_CASE("recovery signs an unsigned end", "[transcript][recovery]")
{
	TempDir dir;
	const fs::path keys = dir.path() / "keys";
	fs::create_directory(keys);
	const fs::path key = write_ed25519_key(keys);
	const fs::path sessions = dir.path() / "sessions";
	fs::create_directory(sessions);

	TranscriptOptions options;
	options.signing_key = key;
	fs::path path;
	{
		auto writer = TranscriptWriter::create(sessions, header("unsigned-end"), options);
		REQUIRE(writer);
		REQUIRE((*writer)->end("exit"));
		path = (*writer)->path();
	}
	// Drop the checkpoint after the end, as a crash between the two would.
	std::string content = read_file(path);
	content.resize(content.rfind('\n', content.size() - 2) + 1);
	write_file(path, content);
	auto public_key = TranscriptVerifyKey::load(keys / "signing.pub");
	REQUIRE(public_key);
	REQUIRE(verify_transcript_file(path, {}, &*public_key).status == VerifyStatus::unsealed);

	auto outcomes = seal_abandoned_transcripts(sessions, options);
	REQUIRE(outcomes);
	REQUIRE(outcomes->size() == 1);
	CHECK(outcomes->at(0).message == path.string() + ": signed its end record");
	const VerifyResult verified = verify_transcript_file(path, {}, &*public_key);
	CHECK(verified.status == VerifyStatus::ok);
	CHECK(verified.end_reason == "exit");
}

TEST_CASE("newest end hash links sessions", "[transcript][recovery]")
{
	TempDir dir;
	auto empty = newest_end_hash(dir.path());
	REQUIRE(empty);
	CHECK(empty->empty());

	std::string older_hash;
	{
		auto older = TranscriptWriter::create(dir.path(), header("b-older"));
		REQUIRE(older);
		REQUIRE((*older)->end("exit"));
		older_hash = (*older)->end_hash();
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	std::string newer_hash;
	{
		TranscriptOptions options;
		options.previous_end_hash = older_hash;
		auto newer = TranscriptWriter::create(dir.path(), header("a-newer"), options);
		REQUIRE(newer);
		REQUIRE((*newer)->end("exit"));
		newer_hash = (*newer)->end_hash();
	}
	write_crashed_session(dir.path(), "c-unsealed", 1);

	auto newest = newest_end_hash(dir.path());
	REQUIRE(newest);
	CHECK(*newest == newer_hash);
	// Without a signing key the end record is the last line.
	const std::string content = read_file(dir.path() / "a-newer.jsonl");
	const std::size_t last_line = content.rfind('\n', content.size() - 2) + 1;
	CHECK(newer_hash == transcript::line_hash(content.substr(last_line, content.size() - 1 - last_line)));
}
