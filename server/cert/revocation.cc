// RevocationList lookups, the text list parser and the file loader.
#include "server/cert/revocation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include <openssl/evp.h>

#include "common/escape.h"
#include "server/cert/limits.h"

namespace jead {

namespace {

using namespace cert_limits;

constexpr std::string_view kKrlMagic{"SSHKRL\n\0", 8};
constexpr std::size_t kSha256FingerprintBase64Length = 43;

Bytes sha1(std::span<const std::uint8_t> data)
{
	Bytes digest(20);
	unsigned int length = 0;
	EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha1(), nullptr);
	digest.resize(length);
	return digest;
}

std::string describe_ca(const Bytes& ca_key)
{
	return ca_key.empty() ? std::string("any CA") : "CA " + ssh_fingerprint(ca_key);
}

std::string_view trim_blanks(std::string_view text)
{
	const std::size_t start = text.find_first_not_of(" \t\r");
	if (start == std::string_view::npos)
		return {};
	const std::size_t end = text.find_last_not_of(" \t\r");
	return text.substr(start, end - start + 1);
}

Result<std::uint64_t> parse_serial(std::string_view digits)
{
	if (digits.empty() || digits.size() > 20)
		return fail(Errc::invalid, "serial must be a decimal number from 1 to 18446744073709551615");
	std::uint64_t value = 0;
	for (char c : digits) {
		if (c < '0' || c > '9')
			return fail(Errc::invalid, "serial must be a decimal number from 1 to 18446744073709551615");
		const auto digit = static_cast<std::uint64_t>(c - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return fail(Errc::invalid, "serial is larger than 18446744073709551615");
		value = value * 10 + digit;
	}
	if (value == 0)
		return fail(Errc::invalid, "serial 0 cannot be revoked: it is the serial of every certificate issued "
		                           "without ssh-keygen -z, so revoke those by key ID");
	return value;
}

Result<void> parse_text_entry(std::string_view entry, RevocationList& list)
{
	constexpr std::string_view kSerial = "serial:";
	constexpr std::string_view kKeyId = "key-id:";
	constexpr std::string_view kSha256 = "SHA256:";

	if (entry.starts_with(kSerial)) {
		auto serial = parse_serial(trim_blanks(entry.substr(kSerial.size())));
		if (!serial)
			return tl::unexpected(serial.error());
		list.revoke_serials({}, *serial, *serial);
		return {};
	}
	if (entry.starts_with(kKeyId)) {
		const std::string_view key_id = trim_blanks(entry.substr(kKeyId.size()));
		if (key_id.empty())
			return fail(Errc::invalid, "key-id: needs a key ID");
		list.revoke_key_id({}, std::string(key_id));
		return {};
	}
	if (entry.starts_with(kSha256)) {
		const std::string_view base64 = entry.substr(kSha256.size());
		auto hash = base64_decode(base64);
		if (base64.size() != kSha256FingerprintBase64Length || !hash || hash->size() != 32)
			return fail(Errc::invalid, "invalid SHA256 fingerprint " + escape_untrusted(entry) +
			                               ": expected \"SHA256:\" and 43 base64 characters as ssh-keygen -l prints");
		list.revoke_key_sha256(std::move(*hash));
		return {};
	}
	return fail(Errc::invalid, "invalid entry " + escape_untrusted(entry) +
	                               ": expected serial:N, key-id:TEXT or SHA256:FINGERPRINT");
}

Result<Bytes> read_whole_file(const std::string& path)
{
	const auto failed = [&](std::string_view what, int error) {
		return fail(error == ENOENT ? Errc::not_found : Errc::io,
		            "failed to " + std::string(what) + " revocation list " + escape_untrusted(path) + ": " +
		                std::strerror(error));
	};

	const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failed("open", errno);
	struct Closer {
		int fd;
		~Closer() { close(fd); }
	} closer{fd};

	struct stat status {};
	if (fstat(fd, &status) != 0)
		return failed("stat", errno);
	if (!S_ISREG(status.st_mode))
		return fail(Errc::invalid, "revocation list " + escape_untrusted(path) + " is not a regular file");
	if (static_cast<std::uint64_t>(status.st_size) > kMaxRevocationFileSize)
		return fail(Errc::limit, "revocation list " + escape_untrusted(path) + " is " + std::to_string(status.st_size) +
		                             " bytes, over the limit of " + std::to_string(kMaxRevocationFileSize));

	// Reads one byte past the size fstat reported, so a file that grew
	// after fstat is noticed instead of cut short.
	Bytes data(static_cast<std::size_t>(status.st_size) + 1);
	std::size_t filled = 0;
	while (filled < data.size()) {
		const ssize_t n = read(fd, data.data() + filled, data.size() - filled);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return failed("read", errno);
		if (n == 0)
			break;
		filled += static_cast<std::size_t>(n);
	}
	if (filled == data.size())
		return fail(Errc::io, "revocation list " + escape_untrusted(path) + " changed size while being read");
	data.resize(filled);
	return data;
}

}  // namespace

void RevocationList::revoke_key(Bytes key_blob)
{
	keys_.insert(std::move(key_blob));
}

void RevocationList::revoke_key_sha1(Bytes hash)
{
	sha1_hashes_.insert(std::move(hash));
}

void RevocationList::revoke_key_sha256(Bytes hash)
{
	sha256_hashes_.insert(std::move(hash));
}

void RevocationList::revoke_key_id(const Bytes& ca_key, std::string key_id)
{
	scopes_[ca_key].key_ids.insert(std::move(key_id));
}

void RevocationList::note_ignored_extension(std::string name)
{
	ignored_extensions_.push_back(std::move(name));
}

// Inserts [first, last] and merges it with every range it overlaps or
// touches, so the map stays disjoint and a lookup needs one upper_bound.
void RevocationList::revoke_serials(const Bytes& ca_key, std::uint64_t first, std::uint64_t last)
{
	auto& ranges = scopes_[ca_key].serial_ranges;
	auto next = ranges.upper_bound(first);
	if (next != ranges.begin()) {
		const auto previous = std::prev(next);
		if (previous->second >= first - 1) {
			first = previous->first;
			last = std::max(last, previous->second);
			next = ranges.erase(previous);
		}
	}
	// Each iteration erases one range, so the loop ends.
	while (next != ranges.end() && (last == UINT64_MAX || next->first <= last + 1)) {
		last = std::max(last, next->second);
		next = ranges.erase(next);
	}
	ranges[first] = last;
}

Result<void> RevocationList::check_key(const Bytes& key_blob, std::string_view label) const
{
	std::string how;
	if (keys_.count(key_blob))
		how = "listed by key";
	else if (sha256_hashes_.count(sha256(key_blob)))
		how = "listed by SHA256 fingerprint";
	else if (sha1_hashes_.count(sha1(key_blob)))
		how = "listed by SHA1 hash";
	if (!how.empty())
		return fail(Errc::denied, std::string(label) + " " + ssh_fingerprint(key_blob) + " is revoked in " +
		                              source_ + " (" + how + ")");
	return {};
}

Result<void> RevocationList::check_scope(const Certificate& cert, const Bytes& ca_key) const
{
	const auto scope = scopes_.find(ca_key);
	if (scope == scopes_.end())
		return {};

	if (scope->second.key_ids.count(cert.key_id))
		return fail(Errc::denied, "certificate key ID " + escape_untrusted(cert.key_id) + " is revoked in " + source_ +
		                              " for " + describe_ca(ca_key));

	// Serial 0 is what ssh-keygen writes without -z, so it never matches.
	const auto& ranges = scope->second.serial_ranges;
	auto range = ranges.upper_bound(cert.serial);
	if (cert.serial != 0 && range != ranges.begin() && cert.serial <= std::prev(range)->second)
		return fail(Errc::denied, "certificate serial " + std::to_string(cert.serial) + " is revoked in " + source_ +
		                              " for " + describe_ca(ca_key));
	return {};
}

Result<void> RevocationList::check(const Certificate& cert) const
{
	if (auto key = check_key(cert.public_key, "certificate key"); !key)
		return key;
	if (auto ca = check_key(cert.signature_key, "CA key"); !ca)
		return fail(Errc::denied, ca.error().message + ", which revokes every certificate it signed");
	if (auto scoped = check_scope(cert, cert.signature_key); !scoped)
		return scoped;
	if (auto any_ca = check_scope(cert, Bytes{}); !any_ca)
		return any_ca;
	return {};
}

Result<RevocationList> parse_revocation_text(std::string_view text, std::string source)
{
	if (text.size() > kMaxRevocationFileSize)
		return fail(Errc::limit, source + ": revocation list of " + std::to_string(text.size()) +
		                             " bytes is over the limit of " + std::to_string(kMaxRevocationFileSize));

	RevocationList list;
	std::size_t line_number = 0;
	// Each iteration consumes one line, so the loop ends.
	while (!text.empty()) {
		++line_number;
		const std::size_t newline = text.find('\n');
		const std::string_view raw = text.substr(0, newline);
		text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);

		const std::string location = source + ":" + std::to_string(line_number) + ": ";
		if (raw.size() > kMaxRevocationLineLength)
			return fail(Errc::limit, location + "line of " + std::to_string(raw.size()) +
			                             " bytes is over the limit of " + std::to_string(kMaxRevocationLineLength));
		const std::string_view line = trim_blanks(raw);
		if (line.empty() || line.front() == '#')
			continue;
		if (auto entry = parse_text_entry(line, list); !entry)
			return fail(entry.error().code, location + entry.error().message);
	}

	list.set_source(std::move(source));
	return list;
}

Result<RevocationList> load_revocation_list(const std::string& path)
{
	auto data = read_whole_file(path);
	if (!data)
		return tl::unexpected(data.error());

	const std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());
	if (text.starts_with(kKrlMagic))
		return parse_krl(*data, path);
	return parse_revocation_text(text, path);
}

}  // namespace jead
