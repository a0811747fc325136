// Signed checkpoints: the writer signs with an Ed25519 key, and verification
// with the public key detects a rewritten chain that the hashes alone
// cannot.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "transcripts/reader.h"
#include "transcripts/record_format.h"
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
		std::string pattern = (fs::temp_directory_path() / "jead-signing-test-XXXXXX").string();
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

struct KeyFiles {
	fs::path private_key;
	fs::path public_key;
};

// Generates a key of `type` ("ED25519" or "EC") and writes it as PEM files
// <name>.key (mode 0600) and <name>.pub in `dir`.
KeyFiles write_key_pair(const fs::path& dir, const std::string& name, const char* type = "ED25519")
{
	EVP_PKEY* key = std::string(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
	                                          : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
	REQUIRE(key != nullptr);
	KeyFiles files{dir / (name + ".key"), dir / (name + ".pub")};

	FILE* private_file = std::fopen(files.private_key.c_str(), "w");
	REQUIRE(private_file != nullptr);
	REQUIRE(::chmod(files.private_key.c_str(), 0600) == 0);
	REQUIRE(PEM_write_PrivateKey(private_file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
	std::fclose(private_file);

	FILE* public_file = std::fopen(files.public_key.c_str(), "w");
	REQUIRE(public_file != nullptr);
	REQUIRE(PEM_write_PUBKEY(public_file, key) == 1);
	std::fclose(public_file);

	EVP_PKEY_free(key);
	return files;
}

TranscriptHeader sample_header()
{
	TranscriptHeader h;
	h.session_id = "signed";
	h.host = "db1";
	h.key_id = "alice";
	h.role = "dba";
	return h;
}

// Writes header, 3 x (input, decision), end, with a checkpoint after every
// `interval` records, and returns the path.
fs::path write_signed_session(const fs::path& dir, const fs::path& key, std::uint64_t interval)
{
	TranscriptOptions options;
	options.signing_key = key;
	options.checkpoint_interval = interval;
	auto writer = TranscriptWriter::create(dir, sample_header(), options);
	REQUIRE(writer);
	for (int i = 0; i < 3; ++i) {
		REQUIRE((*writer)->input("uptime"));
		DecisionRecord d;
		d.allowed = true;
		d.verb = "uptime";
		REQUIRE((*writer)->decision(d));
	}
	REQUIRE((*writer)->end("exit"));
	return (*writer)->path();
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

void write_lines(const fs::path& path, const std::vector<std::string>& lines)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	for (const auto& line : lines)
		out << line << "\n";
}

// Rewrites every prev from line `from` on, as someone who edited a record
// and wants the hash chain to verify again would.
void rechain(std::vector<std::string>& lines, std::size_t from)
{
	for (std::size_t i = std::max<std::size_t>(from, 1); i < lines.size(); ++i) {
		const std::string key = "\"prev\":\"";
		const auto at = lines[i].find(key);
		REQUIRE(at != std::string::npos);
		lines[i].replace(at + key.size(), 64, transcript::line_hash(lines[i - 1]));
	}
}

}  // namespace

TEST_CASE("signed transcript verifies with its key", "[transcript][signing]")
{
	TempDir dir;
	const KeyFiles keys = write_key_pair(dir.path(), "jead");
	const fs::path path = write_signed_session(dir.path(), keys.private_key, 3);
	auto verify_key = TranscriptVerifyKey::load(keys.public_key);
	REQUIRE(verify_key);

	// header input decision [checkpoint] input decision input [checkpoint]
	// decision end [checkpoint]
	auto transcript = read_transcript(path);
	REQUIRE(transcript);
	REQUIRE(transcript->records.size() == 11);
	CHECK(std::holds_alternative<CheckpointRecord>(transcript->records[3].body));
	CHECK(std::holds_alternative<CheckpointRecord>(transcript->records[7].body));
	CHECK(std::holds_alternative<CheckpointRecord>(transcript->records[10].body));
	CHECK(std::get<CheckpointRecord>(transcript->records[3].body).key_fingerprint == verify_key->fingerprint());

	const VerifyResult result = verify_transcript_file(path, {}, &*verify_key);
	CHECK(result.status == VerifyStatus::ok);
	CHECK(result.checkpoints == 3);
	CHECK(result.signed_through == 9u);
	CHECK(describe_verify_result(result) == path.string() + ": ok (11 records, end: exit, signed through seq 9)");

	const VerifyResult unchecked = verify_transcript_file(path);
	CHECK(unchecked.status == VerifyStatus::ok);
	CHECK_FALSE(unchecked.signatures_checked);
}

TEST_CASE("signing key detects a rewritten chain", "[transcript][signing]")
{
	TempDir dir;
	const KeyFiles keys = write_key_pair(dir.path(), "jead");
	const fs::path path = write_signed_session(dir.path(), keys.private_key, 3);
	auto verify_key = TranscriptVerifyKey::load(keys.public_key);
	REQUIRE(verify_key);

	// Turn the first allowed decision into a denial and fix every hash after it.
	auto lines = read_lines(path);
	const auto at = lines[2].find("\"allowed\":true");
	REQUIRE(at != std::string::npos);
	lines[2].replace(at, 14, "\"allowed\":false");
	rechain(lines, 3);
	write_lines(path, lines);

	CHECK(verify_transcript_file(path).status == VerifyStatus::ok);
	const VerifyResult result = verify_transcript_file(path, {}, &*verify_key);
	CHECK(result.status == VerifyStatus::tampered);
	CHECK(result.bad_seq == 3u);
	CHECK(result.detail == "line 4: the checkpoint signature does not verify");
}

TEST_CASE("signing key rejects another key", "[transcript][signing]")
{
	TempDir dir;
	const KeyFiles keys = write_key_pair(dir.path(), "jead");
	const KeyFiles other = write_key_pair(dir.path(), "other");
	const fs::path path = write_signed_session(dir.path(), keys.private_key, 0);
	auto own_key = TranscriptVerifyKey::load(keys.public_key);
	auto other_key = TranscriptVerifyKey::load(other.public_key);
	REQUIRE(own_key);
	REQUIRE(other_key);

	const VerifyResult result = verify_transcript_file(path, {}, &*other_key);
	CHECK(result.status == VerifyStatus::tampered);
	CHECK(result.bad_seq == 8u);
	CHECK(result.detail == "line 9: checkpoint signed by key " + own_key->fingerprint() + ", not by the given key " +
	                           other_key->fingerprint());
}

TEST_CASE("signing key requires a signed end", "[transcript][signing]")
{
	TempDir dir;
	const KeyFiles keys = write_key_pair(dir.path(), "jead");
	const fs::path path = write_signed_session(dir.path(), keys.private_key, 3);
	auto verify_key = TranscriptVerifyKey::load(keys.public_key);
	REQUIRE(verify_key);

	auto lines = read_lines(path);
	lines.pop_back();
	write_lines(path, lines);

	const VerifyResult result = verify_transcript_file(path, {}, &*verify_key);
	CHECK(result.status == VerifyStatus::unsealed);
	CHECK(result.signed_through == 6u);
	CHECK(result.detail == "the end record is not signed: no checkpoint follows it");
	CHECK(verify_transcript_file(path).status == VerifyStatus::ok);
}

TEST_CASE("signing rejects bad private keys", "[transcript][signing]")
{
	TempDir dir;
	const KeyFiles keys = write_key_pair(dir.path(), "jead");
	const KeyFiles ec = write_key_pair(dir.path(), "ec", "EC");

	TranscriptOptions options;
	options.signing_key = ec.private_key;
	auto wrong_type = TranscriptWriter::create(dir.path(), sample_header(), options);
	REQUIRE_FALSE(wrong_type);
	CHECK(wrong_type.error().message == "private key " + ec.private_key.string() + " is not an Ed25519 key");

	REQUIRE(::chmod(keys.private_key.c_str(), 0644) == 0);
	options.signing_key = keys.private_key;
	auto readable = TranscriptWriter::create(dir.path(), sample_header(), options);
	REQUIRE_FALSE(readable);
	CHECK(readable.error().code == Errc::denied);
	CHECK(readable.error().message == "private key " + keys.private_key.string() +
	                                      " is accessible by group or others (mode 0644); run chmod 600 on it");

	options.signing_key = dir.path() / "missing.key";
	auto missing = TranscriptWriter::create(dir.path(), sample_header(), options);
	REQUIRE_FALSE(missing);
	CHECK(missing.error().code == Errc::not_found);
	CHECK(missing.error().message ==
	      "open of private key " + (dir.path() / "missing.key").string() + " failed: No such file or directory");

	// No transcript is created when the key cannot be used.
	CHECK_FALSE(fs::exists(dir.path() / "signed.jsonl"));
}
