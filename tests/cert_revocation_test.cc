// KRLs written by ssh-keygen -k, hand-built KRL sections, and the text
// revocation list. Where possible the verdict is cross-checked with
// ssh-keygen -Q, OpenSSH's own KRL test.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "server/cert/certificate.h"
#include "server/cert/public_key.h"
#include "server/cert/revocation.h"

namespace jead::cert_testing {
// Defined in cert_keygen_test.cc.
std::string make_test_dir();
std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view content);
int run_ssh_keygen(const std::vector<std::string>& args, std::string* output = nullptr);
std::string shared_key(const std::string& spec, const std::string& name);
std::string sign_certificate(const std::string& ca_key, const std::string& user_key,
                             const std::vector<std::string>& options);
Bytes load_key_blob(const std::string& path);
std::string keygen_fingerprint(const std::string& path);
}  // namespace jead::cert_testing

using namespace jead;
using namespace jead::cert_testing;

namespace {

struct Issued {
	std::string path;
	Certificate cert;
};

Issued issue(const std::string& ca_name, const std::vector<std::string>& options)
{
	std::vector<std::string> args = {"-n", "alice", "-V", "-1m:+1h"};
	args.insert(args.end(), options.begin(), options.end());
	Issued issued;
	issued.path = sign_certificate(shared_key("ed25519", ca_name), shared_key("ed25519", "user"), args);
	auto cert = parse_certificate(load_key_blob(issued.path));
	REQUIRE(cert);
	issued.cert = *cert;
	return issued;
}

// Writes `spec` and runs ssh-keygen -k on it, scoped to the CA `ca_name`
// unless it is empty. Returns the KRL path.
std::string make_krl(const std::string& ca_name, const std::string& spec)
{
	const std::string dir = make_test_dir();
	write_file(dir + "/spec", spec);
	std::vector<std::string> args = {"-k", "-f", dir + "/krl"};
	if (!ca_name.empty()) {
		args.push_back("-s");
		args.push_back(shared_key("ed25519", ca_name) + ".pub");
	}
	args.push_back(dir + "/spec");
	std::string output;
	const int status = run_ssh_keygen(args, &output);
	INFO("ssh-keygen output: " << output);
	REQUIRE(status == 0);
	return dir + "/krl";
}

RevocationList load(const std::string& path)
{
	auto list = load_revocation_list(path);
	INFO((list ? "" : list.error().message));
	REQUIRE(list);
	return *list;
}

// Returns whether ssh-keygen -Q reports the certificate as revoked.
bool keygen_says_revoked(const std::string& krl, const std::string& cert_path)
{
	const int status = run_ssh_keygen({"-Q", "-f", krl, cert_path});
	REQUIRE((status == 0 || status == 1));
	return status == 1;
}

std::string revoked_reason(const RevocationList& list, const Certificate& cert)
{
	auto result = list.check(cert);
	REQUIRE_FALSE(result);
	CHECK(result.error().code == Errc::denied);
	return result.error().message;
}

void append_u32(Bytes& out, std::uint32_t value)
{
	for (int shift = 24; shift >= 0; shift -= 8)
		out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// A KRL header (magic, version 1, zero versions, dates and flags, empty
// reserved and comment) followed by `sections`.
Bytes krl_with(const Bytes& sections)
{
	Bytes out = {'S', 'S', 'H', 'K', 'R', 'L', '\n', '\0'};
	append_u32(out, 1);
	out.insert(out.end(), 24, 0);
	append_u32(out, 0);
	append_u32(out, 0);
	out.insert(out.end(), sections.begin(), sections.end());
	return out;
}

Bytes section(std::uint8_t type, const Bytes& data)
{
	Bytes out = {type};
	append_ssh_string(out, data);
	return out;
}

Bytes extension_body(std::string_view name, bool critical)
{
	Bytes out;
	append_ssh_string(out, as_bytes(name));
	out.push_back(critical ? 1 : 0);
	append_ssh_string(out, as_bytes("contents"));
	return out;
}

}  // namespace

TEST_CASE("krl revokes serial", "[cert]")
{
	const std::string krl = make_krl("ca", "serial: 5\n");
	const RevocationList list = load(krl);
	const Issued five = issue("ca", {"-z", "5"});
	const Issued six = issue("ca", {"-z", "6"});

	CHECK(revoked_reason(list, five.cert) == "certificate serial 5 is revoked in " + krl + " for CA " +
	                                             keygen_fingerprint(shared_key("ed25519", "ca") + ".pub"));
	CHECK(keygen_says_revoked(krl, five.path));
	CHECK(list.check(six.cert));
	CHECK_FALSE(keygen_says_revoked(krl, six.path));
}

TEST_CASE("krl serial is scoped to its CA", "[cert]")
{
	const RevocationList list = load(make_krl("ca", "serial: 5\n"));
	const Issued other_ca = issue("other-ca", {"-z", "5"});

	CHECK(list.check(other_ca.cert));
}

TEST_CASE("krl revokes serial range", "[cert]")
{
	const std::string krl = make_krl("ca", "serial: 10-20\n");
	const RevocationList list = load(krl);

	for (std::uint64_t serial : {9, 10, 15, 20, 21}) {
		const Issued issued = issue("ca", {"-z", std::to_string(serial)});
		const bool revoked = !list.check(issued.cert);
		INFO("serial " << serial);
		CHECK(revoked == (serial >= 10 && serial <= 20));
		CHECK(revoked == keygen_says_revoked(krl, issued.path));
	}
}

TEST_CASE("krl revokes serial bitmap", "[cert]")
{
	// Every third serial from 100 to 400: ssh-keygen stores a set this
	// dense as a bitmap subsection.
	std::string spec;
	for (int serial = 100; serial <= 400; serial += 3)
		spec += "serial: " + std::to_string(serial) + "\n";
	const std::string krl = make_krl("ca", spec);
	// 101 serials take 808 bytes as a list; a smaller file means a bitmap.
	REQUIRE(read_file(krl).size() < 808);
	const RevocationList list = load(krl);

	for (std::uint64_t serial : {99, 100, 101, 103, 250, 397, 400, 401, 403}) {
		const Issued issued = issue("ca", {"-z", std::to_string(serial)});
		const bool revoked = !list.check(issued.cert);
		INFO("serial " << serial);
		CHECK(revoked == (serial >= 100 && serial <= 400 && (serial - 100) % 3 == 0));
		CHECK(revoked == keygen_says_revoked(krl, issued.path));
	}
}

TEST_CASE("krl revokes key ID", "[cert]")
{
	const std::string krl = make_krl("ca", "id: laptop-2024\n");
	const RevocationList list = load(krl);
	const Issued revoked = issue("ca", {"-I", "laptop-2024"});
	const Issued kept = issue("ca", {"-I", "laptop-2025"});

	CHECK(revoked_reason(list, revoked.cert) == "certificate key ID \"laptop-2024\" is revoked in " + krl +
	                                                " for CA " + keygen_fingerprint(shared_key("ed25519", "ca") + ".pub"));
	CHECK(keygen_says_revoked(krl, revoked.path));
	CHECK(list.check(kept.cert));
}

TEST_CASE("krl revokes key ID for any CA", "[cert]")
{
	// ssh-keygen 9.2 writes key IDs only under a CA key, so this section
	// with an empty CA key (any CA, as PROTOCOL.krl allows) is built here.
	Bytes certs;
	append_ssh_string(certs, {});
	append_ssh_string(certs, {});
	certs.push_back(0x23);
	Bytes key_ids;
	append_ssh_string(key_ids, as_bytes("laptop-2024"));
	append_ssh_string(certs, key_ids);
	auto list = parse_krl(krl_with(section(1, certs)), "any-ca.krl");
	REQUIRE(list);
	const Issued issued = issue("other-ca", {"-I", "laptop-2024"});

	CHECK(revoked_reason(*list, issued.cert) == "certificate key ID \"laptop-2024\" is revoked in any-ca.krl for any CA");
	CHECK(list->check(issue("other-ca", {"-I", "laptop-2025"}).cert));
}

TEST_CASE("krl revokes CA key", "[cert]")
{
	const std::string ca_pub = shared_key("ed25519", "ca") + ".pub";
	const std::string krl = make_krl("", read_file(ca_pub));
	const RevocationList list = load(krl);
	const Issued issued = issue("ca", {"-z", "77"});

	CHECK(revoked_reason(list, issued.cert) == "CA key " + keygen_fingerprint(ca_pub) + " is revoked in " + krl +
	                                               " (listed by key), which revokes every certificate it signed");
	CHECK(keygen_says_revoked(krl, issued.path));
	CHECK(list.check(issue("other-ca", {}).cert));
}

TEST_CASE("krl revokes plain key", "[cert]")
{
	const std::string user_pub = shared_key("ed25519", "user") + ".pub";
	const std::string krl = make_krl("", read_file(user_pub));
	const RevocationList list = load(krl);
	const Issued issued = issue("ca", {});

	CHECK(revoked_reason(list, issued.cert) ==
	      "certificate key " + keygen_fingerprint(user_pub) + " is revoked in " + krl + " (listed by key)");
	CHECK(keygen_says_revoked(krl, issued.path));
}

TEST_CASE("krl revokes key by hash", "[cert]")
{
	const std::string user_pub = shared_key("ed25519", "user") + ".pub";
	const Issued issued = issue("ca", {});

	const std::string sha256_krl = make_krl("", "hash: " + keygen_fingerprint(user_pub) + "\n");
	CHECK(revoked_reason(load(sha256_krl), issued.cert) == "certificate key " + keygen_fingerprint(user_pub) +
	                                                           " is revoked in " + sha256_krl +
	                                                           " (listed by SHA256 fingerprint)");
	CHECK(keygen_says_revoked(sha256_krl, issued.path));

	const std::string sha1_krl = make_krl("", "sha1: " + read_file(user_pub));
	CHECK(revoked_reason(load(sha1_krl), issued.cert) == "certificate key " + keygen_fingerprint(user_pub) +
	                                                         " is revoked in " + sha1_krl + " (listed by SHA1 hash)");
	CHECK(keygen_says_revoked(sha1_krl, issued.path));

	const std::string other_pub = shared_key("ecdsa-256", "user") + ".pub";
	CHECK(load(make_krl("", "hash: " + keygen_fingerprint(other_pub) + "\n")).check(issued.cert));
}

TEST_CASE("krl truncated is an error", "[cert]")
{
	const std::string krl = make_krl("ca", "serial: 5\nid: x\n");
	const std::string bytes = read_file(krl);

	// The 44-byte header alone is a valid empty KRL. Every other cut, in
	// the header or in the one certificate section, fails to parse.
	constexpr std::size_t kHeaderLength = 44;
	for (std::size_t length = 0; length < bytes.size(); ++length) {
		auto list = parse_krl(as_bytes(std::string_view(bytes).substr(0, length)), "cut.krl");
		INFO("length " << length);
		CHECK(bool(list) == (length == kHeaderLength));
	}

	const std::string cut = make_test_dir() + "/cut.krl";
	write_file(cut, bytes.substr(0, bytes.size() - 1));
	auto list = load_revocation_list(cut);
	REQUIRE_FALSE(list);
	CHECK(list.error().message == cut + ": invalid KRL: truncated section data at offset 45: length " +
	                                  std::to_string(bytes.size() - 49) + " exceeds the " +
	                                  std::to_string(bytes.size() - 50) + " bytes left");
}

TEST_CASE("krl unknown section is an error", "[cert]")
{
	auto list = parse_krl(krl_with(section(7, {})), "test.krl");
	REQUIRE_FALSE(list);
	CHECK(list.error().message == "test.krl: invalid KRL section 0x07 at offset 44: unknown section type 0x07");

	Bytes certs;
	append_ssh_string(certs, {});
	append_ssh_string(certs, {});
	certs.push_back(0x30);
	append_ssh_string(certs, {});
	auto sub = parse_krl(krl_with(section(1, certs)), "test.krl");
	REQUIRE_FALSE(sub);
	CHECK(sub.error().message == "test.krl: invalid KRL certificate subsection 0x30: unknown certificate subsection "
	                             "type 0x30");
}

TEST_CASE("krl section leftover is an error", "[cert]")
{
	Bytes range;
	append_ssh_string(range, {});
	append_ssh_string(range, {});
	range.push_back(0x21);
	Bytes serials = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0xff};
	append_ssh_string(range, serials);

	auto list = parse_krl(krl_with(section(1, range)), "test.krl");
	REQUIRE_FALSE(list);
	CHECK(list.error().message == "test.krl: invalid KRL certificate subsection 0x21: unexpected trailing data (1 "
	                              "bytes) at offset 78");
}

TEST_CASE("krl extensions by criticality", "[cert]")
{
	auto ignored = parse_krl(krl_with(section(255, extension_body("note@example.com", false))), "test.krl");
	REQUIRE(ignored);
	CHECK(ignored->ignored_extensions() == std::vector<std::string>{"note@example.com"});

	auto critical = parse_krl(krl_with(section(255, extension_body("must@example.com", true))), "test.krl");
	REQUIRE_FALSE(critical);
	CHECK(critical.error().message ==
	      "test.krl: invalid KRL section 0xff at offset 44: unsupported critical extension \"must@example.com\"");
}

TEST_CASE("krl signature must come last", "[cert]")
{
	Bytes signature = {4};
	append_ssh_string(signature, as_bytes("key"));
	append_ssh_string(signature, as_bytes("sig"));

	CHECK(parse_krl(krl_with(signature), "test.krl"));

	Bytes after = signature;
	const Bytes extension = section(255, extension_body("note@example.com", false));
	after.insert(after.end(), extension.begin(), extension.end());
	auto list = parse_krl(krl_with(after), "test.krl");
	REQUIRE_FALSE(list);
	CHECK(list.error().message == "test.krl: invalid KRL: section 0xff at offset 59 follows a signature section");
}

TEST_CASE("krl rejects bad header", "[cert]")
{
	Bytes version = krl_with({});
	version[11] = 2;
	auto list = parse_krl(version, "test.krl");
	REQUIRE_FALSE(list);
	CHECK(list.error().message == "test.krl: invalid KRL: unsupported format version 2, expected 1");

	Bytes flags = krl_with({});
	flags[35] = 1;
	auto flagged = parse_krl(flags, "test.krl");
	REQUIRE_FALSE(flagged);
	CHECK(flagged.error().message == "test.krl: invalid KRL: unknown flags 1, no flags are defined");
}

TEST_CASE("revocation list missing file", "[cert]")
{
	const std::string path = make_test_dir() + "/absent.krl";
	auto list = load_revocation_list(path);
	REQUIRE_FALSE(list);
	CHECK(list.error().code == Errc::not_found);
	CHECK(list.error().message == "failed to open revocation list \"" + path + "\": No such file or directory");

	auto directory = load_revocation_list(make_test_dir());
	REQUIRE_FALSE(directory);
	CHECK(directory.error().message.find("is not a regular file") != std::string::npos);
}

TEST_CASE("text list revokes entries", "[cert]")
{
	const std::string user_pub = shared_key("ed25519", "user") + ".pub";
	const std::string path = make_test_dir() + "/revoked.txt";
	write_file(path, "# revoked after the laptop theft\n"
	                 "\n"
	                 "serial:42\n"
	                 "  key-id: laptop-2024  \r\n"
	                 "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
	const RevocationList list = load(path);

	CHECK(revoked_reason(list, issue("ca", {"-z", "42"}).cert) == "certificate serial 42 is revoked in " + path +
	                                                                  " for any CA");
	CHECK(revoked_reason(list, issue("other-ca", {"-I", "laptop-2024"}).cert) ==
	      "certificate key ID \"laptop-2024\" is revoked in " + path + " for any CA");
	CHECK(list.check(issue("ca", {"-z", "43"}).cert));

	write_file(path, "SHA256:" + keygen_fingerprint(user_pub).substr(7) + "\n");
	CHECK(revoked_reason(load(path), issue("ca", {}).cert) ==
	      "certificate key " + keygen_fingerprint(user_pub) + " is revoked in " + path + " (listed by SHA256 fingerprint)");
}

TEST_CASE("text list rejects bad lines", "[cert]")
{
	struct Case {
		std::string text;
		std::string message;
	};
	const std::vector<Case> cases = {
		{"serial:1\nserial 2\n", "list.txt:2: invalid entry \"serial 2\": expected serial:N, key-id:TEXT or "
		                         "SHA256:FINGERPRINT"},
		{"serial:0\n", "list.txt:1: serial 0 cannot be revoked: it is the serial of every certificate issued "
		               "without ssh-keygen -z, so revoke those by key ID"},
		{"serial:-1\n", "list.txt:1: serial must be a decimal number from 1 to 18446744073709551615"},
		{"serial:18446744073709551616\n", "list.txt:1: serial is larger than 18446744073709551615"},
		{"# ok\nkey-id:\n", "list.txt:2: key-id: needs a key ID"},
		{"SHA256:abc\n", "list.txt:1: invalid SHA256 fingerprint \"SHA256:abc\": expected \"SHA256:\" and 43 base64 "
		                 "characters as ssh-keygen -l prints"},
	};
	for (const Case& c : cases) {
		INFO(c.text);
		auto list = parse_revocation_text(c.text, "list.txt");
		REQUIRE_FALSE(list);
		CHECK(list.error().message == c.message);
	}
}
