// Parser for OpenSSH binary KRLs (PROTOCOL.krl, format version 1).
#include <cstring>

#include "common/escape.h"
#include "server/cert/limits.h"
#include "server/cert/revocation.h"
#include "server/cert/ssh_reader.h"

namespace jead {

namespace {

using namespace cert_limits;

constexpr std::uint8_t kKrlMagic[8] = {'S', 'S', 'H', 'K', 'R', 'L', '\n', '\0'};
constexpr std::uint32_t kKrlFormatVersion = 1;

enum SectionType : std::uint8_t {
	kSectionCertificates = 1,
	kSectionExplicitKey = 2,
	kSectionFingerprintSha1 = 3,
	kSectionSignature = 4,
	kSectionFingerprintSha256 = 5,
	kSectionExtension = 255,
};

enum CertSectionType : std::uint8_t {
	kCertSerialList = 0x20,
	kCertSerialRange = 0x21,
	kCertSerialBitmap = 0x22,
	kCertKeyId = 0x23,
	kCertExtension = 0x39,
};

constexpr std::size_t kSha1Length = 20;
constexpr std::size_t kSha256Length = 32;

std::string hex_byte(std::uint8_t value)
{
	static constexpr char digits[] = "0123456789abcdef";
	return std::string("0x") + digits[value >> 4] + digits[value & 0xF];
}

// Wraps an error from a nested step with the file name.
tl::unexpected<Error> with_source(const std::string& source, const Error& error)
{
	return tl::unexpected(Error{error.code, source + ": " + error.message});
}

Result<void> invalid(const SshReader& reader, const std::string& what)
{
	return fail(Errc::invalid, "invalid " + reader.context() + ": " + what);
}

// Reads an extension body (string name, bool critical, string contents).
// A critical extension is an error, because jead implements none.
Result<void> read_extension(SshReader& section, RevocationList& list)
{
	auto name = section.get_text("extension name", kMaxOptionNameLength);
	if (!name)
		return tl::unexpected(name.error());
	auto critical = section.get_bool("extension is_critical");
	if (!critical)
		return tl::unexpected(critical.error());
	auto contents = section.get_string("extension contents", kMaxRevocationFileSize);
	if (!contents)
		return tl::unexpected(contents.error());

	if (*critical)
		return invalid(section, "unsupported critical extension " + escape_untrusted(*name));
	list.note_ignored_extension(std::move(*name));
	return {};
}

Result<void> read_serial(SshReader& reader, std::string_view field, std::uint64_t& serial)
{
	auto value = reader.get_u64(field);
	if (!value)
		return tl::unexpected(value.error());
	// OpenSSH's KRL code rejects serial 0, which is also the serial of
	// every certificate issued without ssh-keygen -z.
	if (*value == 0)
		return invalid(reader, "serial 0 cannot be revoked, at offset " + std::to_string(reader.offset() - 8));
	serial = *value;
	return {};
}

// Reads a serial bitmap: uint64 offset, then an mpint whose bit N (counted
// from the least significant bit) revokes serial offset + N.
Result<void> read_serial_bitmap(SshReader& section, const Bytes& ca_key, RevocationList& list)
{
	auto base = section.get_u64("bitmap serial offset");
	if (!base)
		return tl::unexpected(base.error());
	auto bitmap = section.get_mpint("bitmap", kMaxMpintLength);
	if (!bitmap)
		return tl::unexpected(bitmap.error());

	const std::uint64_t bits = bitmap->size() * 8;
	if (bits > 0 && *base > UINT64_MAX - (bits - 1))
		return invalid(section, "serial bitmap wraps past the largest serial");

	// Each run of set bits becomes one range. The loop runs at most
	// 8 * kMaxMpintLength times.
	bool in_run = false;
	std::uint64_t run_start = 0;
	for (std::uint64_t bit = 0; bit <= bits; ++bit) {
		bool set = false;
		if (bit < bits) {
			const std::uint8_t byte = (*bitmap)[bitmap->size() - 1 - bit / 8];
			set = (byte >> (bit % 8)) & 1;
		}
		if (set && !in_run) {
			run_start = bit;
			in_run = true;
		} else if (!set && in_run) {
			if (*base + run_start == 0)
				return invalid(section, "serial bitmap revokes serial 0");
			list.revoke_serials(ca_key, *base + run_start, *base + bit - 1);
			in_run = false;
		}
	}
	return {};
}

Result<void> read_cert_subsection(std::uint8_t type, SshReader& section, const Bytes& ca_key, RevocationList& list)
{
	switch (type) {
	case kCertSerialList:
		while (!section.empty()) {
			std::uint64_t serial = 0;
			if (auto read = read_serial(section, "serial", serial); !read)
				return read;
			list.revoke_serials(ca_key, serial, serial);
		}
		return {};
	case kCertSerialRange: {
		std::uint64_t first = 0;
		std::uint64_t last = 0;
		if (auto read = read_serial(section, "serial_min", first); !read)
			return read;
		if (auto read = read_serial(section, "serial_max", last); !read)
			return read;
		if (first > last)
			return invalid(section, "serial range " + std::to_string(first) + "-" + std::to_string(last) +
			                            " is reversed");
		list.revoke_serials(ca_key, first, last);
		return {};
	}
	case kCertSerialBitmap:
		return read_serial_bitmap(section, ca_key, list);
	case kCertKeyId:
		if (section.empty())
			return invalid(section, "key ID subsection is empty");
		while (!section.empty()) {
			auto key_id = section.get_text("key ID", kMaxKeyIdLength);
			if (!key_id)
				return tl::unexpected(key_id.error());
			list.revoke_key_id(ca_key, std::move(*key_id));
		}
		return {};
	case kCertExtension:
		return read_extension(section, list);
	default:
		return invalid(section, "unknown certificate subsection type " + hex_byte(type));
	}
}

// A certificate section: string CA key (empty for any CA), string
// reserved, then (byte type, string data) subsections.
Result<void> read_certificates_section(SshReader& section, RevocationList& list)
{
	auto ca_key = section.get_string("CA key", kMaxPublicKeyBlobSize);
	if (!ca_key)
		return tl::unexpected(ca_key.error());
	if (auto reserved = section.get_string("reserved", kMaxReservedLength); !reserved)
		return tl::unexpected(reserved.error());
	const Bytes ca(ca_key->begin(), ca_key->end());

	// Each iteration consumes at least 5 bytes.
	while (!section.empty()) {
		auto type = section.get_u8("subsection type");
		if (!type)
			return tl::unexpected(type.error());
		auto subsection = section.get_sub_reader("subsection data", kMaxRevocationFileSize,
		                                         "KRL certificate subsection " + hex_byte(*type));
		if (!subsection)
			return tl::unexpected(subsection.error());
		if (auto read = read_cert_subsection(*type, *subsection, ca, list); !read)
			return read;
		if (auto end = subsection->expect_end(); !end)
			return end;
	}
	return {};
}

// A sequence of at least one string. Hashes have a fixed length and must
// be in strictly increasing order, as PROTOCOL.krl requires.
Result<void> read_blob_section(SshReader& section, std::size_t hash_length, RevocationList& list,
                               void (RevocationList::*revoke)(Bytes))
{
	if (section.empty())
		return invalid(section, "section is empty");
	Bytes previous;
	while (!section.empty()) {
		auto blob = section.get_string("entry", hash_length != 0 ? hash_length : kMaxPublicKeyBlobSize);
		if (!blob)
			return tl::unexpected(blob.error());
		Bytes entry(blob->begin(), blob->end());
		if (hash_length != 0 && entry.size() != hash_length)
			return invalid(section, "hash of " + std::to_string(entry.size()) + " bytes, expected " +
			                            std::to_string(hash_length));
		if (hash_length != 0 && !previous.empty() && !(previous < entry))
			return invalid(section, "hashes are not in increasing order");
		if (hash_length == 0 && entry.empty())
			return invalid(section, "empty key blob");
		previous = entry;
		(list.*revoke)(std::move(entry));
	}
	return {};
}

Result<void> read_header(SshReader& reader)
{
	auto magic = reader.get_raw("magic", sizeof kKrlMagic);
	if (!magic || std::memcmp(magic->data(), kKrlMagic, sizeof kKrlMagic) != 0)
		return invalid(reader, "missing the \"SSHKRL\\n\\0\" magic");
	auto version = reader.get_u32("format version");
	if (!version)
		return tl::unexpected(version.error());
	if (*version != kKrlFormatVersion)
		return invalid(reader, "unsupported format version " + std::to_string(*version) + ", expected 1");

	for (std::string_view field : {"krl_version", "generated_date"})
		if (auto value = reader.get_u64(field); !value)
			return tl::unexpected(value.error());
	auto flags = reader.get_u64("flags");
	if (!flags)
		return tl::unexpected(flags.error());
	if (*flags != 0)
		return invalid(reader, "unknown flags " + std::to_string(*flags) + ", no flags are defined");
	if (auto reserved = reader.get_string("reserved", kMaxReservedLength); !reserved)
		return tl::unexpected(reserved.error());
	if (auto comment = reader.get_string("comment", kMaxKrlCommentLength); !comment)
		return tl::unexpected(comment.error());
	return {};
}

Result<void> read_section(std::uint8_t type, SshReader& section, RevocationList& list)
{
	switch (type) {
	case kSectionCertificates:
		return read_certificates_section(section, list);
	case kSectionExplicitKey:
		return read_blob_section(section, 0, list, &RevocationList::revoke_key);
	case kSectionFingerprintSha1:
		return read_blob_section(section, kSha1Length, list, &RevocationList::revoke_key_sha1);
	case kSectionFingerprintSha256:
		return read_blob_section(section, kSha256Length, list, &RevocationList::revoke_key_sha256);
	case kSectionExtension:
		return read_extension(section, list);
	default:
		return invalid(section, "unknown section type " + hex_byte(type));
	}
}

}  // namespace

Result<RevocationList> parse_krl(std::span<const std::uint8_t> data, std::string source)
{
	if (data.size() > kMaxRevocationFileSize)
		return fail(Errc::limit, source + ": KRL of " + std::to_string(data.size()) + " bytes is over the limit of " +
		                             std::to_string(kMaxRevocationFileSize));

	SshReader reader(data, "KRL");
	if (auto header = read_header(reader); !header)
		return with_source(source, header.error());

	RevocationList list;
	bool signature_seen = false;
	// Each iteration consumes at least 5 bytes.
	while (!reader.empty()) {
		const std::size_t section_offset = reader.offset();
		auto type = reader.get_u8("section type");
		if (!type)
			return with_source(source, type.error());

		if (*type == kSectionSignature) {
			// NOTE: KRL signatures are not verified. jead reads the KRL
			// from a local file whose permissions are its protection, and
			// OpenSSH 9.4 and later reject signed KRLs outright. The
			// format requires signature sections (string key, string
			// signature) to come last, so only that layout is skipped.
			signature_seen = true;
			for (std::string_view field : {"signature key", "signature"})
				if (auto skipped = reader.get_string(field, kMaxSignatureBlobSize); !skipped)
					return with_source(source, skipped.error());
			continue;
		}
		if (signature_seen)
			return fail(Errc::invalid, source + ": invalid KRL: section " + hex_byte(*type) + " at offset " +
			                               std::to_string(section_offset) + " follows a signature section");

		auto section = reader.get_sub_reader("section data", kMaxRevocationFileSize,
		                                     "KRL section " + hex_byte(*type) + " at offset " +
		                                         std::to_string(section_offset));
		if (!section)
			return with_source(source, section.error());
		if (auto read = read_section(*type, *section, list); !read)
			return with_source(source, read.error());
		if (auto end = section->expect_end(); !end)
			return with_source(source, end.error());
	}

	list.set_source(std::move(source));
	return list;
}

}  // namespace jead
