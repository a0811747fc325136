// Parsing of OpenSSH certificates (PROTOCOL.certkeys, "-cert-v01" types)
// and of public key lines. Signature checks are in signature.cc and the
// policy decision in certificate_check.cc.
#include "server/cert/certificate.h"

#include <algorithm>

#include "common/escape.h"
#include "server/cert/limits.h"
#include "server/cert/public_key.h"
#include "server/cert/ssh_reader.h"

namespace jead {

namespace {

using namespace cert_limits;

// The wire layout after the key fields, shared by every -cert-v01 type:
// serial, type, key ID, principals, validity, critical options,
// extensions, reserved, CA key, signature.

// Reads the key type name, nonce and key fields, and rebuilds the plain
// public key blob from the plain type name and the same field bytes.
Result<void> read_key_part(SshReader& reader, std::span<const std::uint8_t> blob, Certificate& cert)
{
	auto name = reader.get_text("key type", kMaxKeyTypeNameLength);
	if (!name)
		return tl::unexpected(name.error());
	const auto type = find_key_type_by_cert_name(*name);
	if (!type)
		return fail(Errc::invalid, "invalid certificate: unsupported certificate type " + escape_untrusted(*name));
	cert.cert_key_type = *name;
	cert.plain_key_type = std::string(type->plain_name);
	cert.security_key = type->security_key;

	auto nonce = reader.get_string("nonce", kMaxNonceLength);
	if (!nonce)
		return tl::unexpected(nonce.error());
	cert.nonce.assign(nonce->begin(), nonce->end());

	const std::size_t fields_start = reader.offset();
	auto fields = read_public_key_fields(reader, *type);
	if (!fields)
		return tl::unexpected(fields.error());
	cert.sk_application = fields->sk_application;
	if (type->algorithm == KeyAlgorithm::rsa && rsa_modulus_bits(*fields) < kMinRsaUserKeyBits)
		return fail(Errc::invalid, "invalid certificate: RSA key of " + std::to_string(rsa_modulus_bits(*fields)) +
		                               " bits is below the minimum of " + std::to_string(kMinRsaUserKeyBits) + " bits");

	cert.public_key.clear();
	append_ssh_string(cert.public_key, as_bytes(type->plain_name));
	const auto field_bytes = blob.subspan(fields_start, reader.offset() - fields_start);
	cert.public_key.insert(cert.public_key.end(), field_bytes.begin(), field_bytes.end());
	return {};
}

Result<void> read_principals(SshReader& reader, Certificate& cert)
{
	auto list = reader.get_sub_reader("valid principals", kMaxPrincipals * (4 + kMaxPrincipalLength),
	                                  "certificate principals");
	if (!list)
		return tl::unexpected(list.error());

	// Each iteration consumes at least the 4-byte length, and the count is capped.
	while (!list->empty()) {
		if (cert.principals.size() == kMaxPrincipals)
			return fail(Errc::limit, "invalid certificate: more than " + std::to_string(kMaxPrincipals) +
			                             " principals");
		auto principal = list->get_text("principal", kMaxPrincipalLength);
		if (!principal)
			return tl::unexpected(principal.error());
		cert.principals.push_back(std::move(*principal));
	}
	return {};
}

// Reads critical options or extensions: a sequence of (string name,
// string data) in strictly increasing byte order of name, where a
// non-empty data field holds exactly one string, the value.
Result<std::vector<CertOption>> read_options(SshReader& reader, std::string_view what)
{
	const std::string context = "certificate " + std::string(what);
	auto list = reader.get_sub_reader(what, kMaxOptions * (8 + kMaxOptionNameLength + 4 + kMaxOptionDataLength),
	                                  context);
	if (!list)
		return tl::unexpected(list.error());

	std::vector<CertOption> options;
	while (!list->empty()) {
		if (options.size() == kMaxOptions)
			return fail(Errc::limit, "invalid " + context + ": more than " + std::to_string(kMaxOptions) + " entries");

		CertOption option;
		auto name = list->get_text("option name", kMaxOptionNameLength);
		if (!name)
			return tl::unexpected(name.error());
		option.name = std::move(*name);

		auto data = list->get_sub_reader("option data", 4 + kMaxOptionDataLength, context + " " + escape_untrusted(option.name));
		if (!data)
			return tl::unexpected(data.error());
		if (!data->empty()) {
			auto value = data->get_text("option value", kMaxOptionDataLength);
			if (!value)
				return tl::unexpected(value.error());
			if (auto end = data->expect_end(); !end)
				return tl::unexpected(end.error());
			option.data = std::move(*value);
		}

		if (!options.empty() && option.name == options.back().name)
			return fail(Errc::invalid, "invalid " + context + ": duplicate entry " + escape_untrusted(option.name));
		if (!options.empty() && option.name < options.back().name)
			return fail(Errc::invalid, "invalid " + context + ": entries are not sorted, " +
			                               escape_untrusted(option.name) + " follows " +
			                               escape_untrusted(options.back().name));
		options.push_back(std::move(option));
	}
	return options;
}

Result<void> read_identity_part(SshReader& reader, Certificate& cert)
{
	auto serial = reader.get_u64("serial");
	if (!serial)
		return tl::unexpected(serial.error());
	cert.serial = *serial;

	auto type = reader.get_u32("certificate type");
	if (!type)
		return tl::unexpected(type.error());
	if (*type != static_cast<std::uint32_t>(CertType::user) && *type != static_cast<std::uint32_t>(CertType::host))
		return fail(Errc::invalid, "invalid certificate: unknown certificate type " + std::to_string(*type) +
		                               ", expected 1 (user) or 2 (host)");
	cert.type = static_cast<CertType>(*type);

	auto key_id = reader.get_text("key ID", kMaxKeyIdLength);
	if (!key_id)
		return tl::unexpected(key_id.error());
	cert.key_id = std::move(*key_id);

	if (auto principals = read_principals(reader, cert); !principals)
		return principals;

	auto valid_after = reader.get_u64("valid after");
	if (!valid_after)
		return tl::unexpected(valid_after.error());
	auto valid_before = reader.get_u64("valid before");
	if (!valid_before)
		return tl::unexpected(valid_before.error());
	cert.valid_after = *valid_after;
	cert.valid_before = *valid_before;
	return {};
}

Result<void> read_signature_part(SshReader& reader, std::span<const std::uint8_t> blob, Certificate& cert)
{
	auto reserved = reader.get_string("reserved", kMaxReservedLength);
	if (!reserved)
		return tl::unexpected(reserved.error());
	if (!reserved->empty())
		return fail(Errc::invalid, "invalid certificate: the reserved field is not empty (" +
		                               std::to_string(reserved->size()) + " bytes)");

	auto ca_key = reader.get_string("signature key", kMaxPublicKeyBlobSize);
	if (!ca_key)
		return tl::unexpected(ca_key.error());
	cert.signature_key.assign(ca_key->begin(), ca_key->end());

	const auto signed_part = blob.first(reader.offset());
	cert.signed_data.assign(signed_part.begin(), signed_part.end());

	const std::size_t signature_offset = reader.offset() + 4;
	auto signature = reader.get_string("signature", kMaxSignatureBlobSize);
	if (!signature)
		return tl::unexpected(signature.error());
	cert.signature.assign(signature->begin(), signature->end());

	// The signature blob is (string algorithm, string signature bytes).
	// Its contents are checked in verify_ca_signature, but the algorithm
	// name is recorded here for logging.
	SshReader inner(*signature, "certificate signature", signature_offset);
	auto algorithm = inner.get_text("signature algorithm", kMaxKeyTypeNameLength);
	if (!algorithm)
		return tl::unexpected(algorithm.error());
	cert.signature_algorithm = std::move(*algorithm);
	if (auto bytes = inner.get_string("signature bytes", kMaxSignatureBlobSize); !bytes)
		return tl::unexpected(bytes.error());
	return inner.expect_end();
}

}  // namespace

Result<Certificate> parse_certificate(std::span<const std::uint8_t> blob)
{
	if (blob.size() > kMaxCertificateBlobSize)
		return fail(Errc::limit, "invalid certificate: " + std::to_string(blob.size()) +
		                             " bytes, over the limit of " + std::to_string(kMaxCertificateBlobSize));

	SshReader reader(blob, "certificate");
	Certificate cert;

	if (auto key = read_key_part(reader, blob, cert); !key)
		return tl::unexpected(key.error());
	if (auto identity = read_identity_part(reader, cert); !identity)
		return tl::unexpected(identity.error());

	auto critical = read_options(reader, "critical options");
	if (!critical)
		return tl::unexpected(critical.error());
	cert.critical_options = std::move(*critical);
	auto extensions = read_options(reader, "extensions");
	if (!extensions)
		return tl::unexpected(extensions.error());
	cert.extensions = std::move(*extensions);

	if (auto signature = read_signature_part(reader, blob, cert); !signature)
		return tl::unexpected(signature.error());
	if (auto end = reader.expect_end(); !end)
		return tl::unexpected(end.error());
	return cert;
}

const CertOption* find_critical_option(const Certificate& cert, std::string_view name)
{
	for (const CertOption& option : cert.critical_options)
		if (option.name == name)
			return &option;
	return nullptr;
}

Result<PublicKeyLine> parse_public_key_line(std::string_view line)
{
	if (line.size() > kMaxPublicKeyLineLength)
		return fail(Errc::limit, "invalid public key line: " + std::to_string(line.size()) +
		                             " bytes, over the limit of " + std::to_string(kMaxPublicKeyLineLength));

	constexpr std::string_view kBlank = " \t\r\n";
	const auto next_word = [&]() {
		const std::size_t start = std::min(line.find_first_not_of(kBlank), line.size());
		line.remove_prefix(start);
		const std::size_t end = std::min(line.find_first_of(kBlank), line.size());
		const std::string_view word = line.substr(0, end);
		line.remove_prefix(end);
		return word;
	};

	const std::string_view type = next_word();
	const std::string_view base64 = next_word();
	if (type.empty())
		return fail(Errc::invalid, "invalid public key line: the line is empty");
	if (base64.empty())
		return fail(Errc::invalid, "invalid public key line: missing base64 key data after " + escape_untrusted(type));

	auto blob = base64_decode(base64);
	if (!blob)
		return fail(Errc::invalid, "invalid public key line: " + blob.error().message);

	SshReader reader(*blob, "public key");
	auto inner_type = reader.get_text("key type", kMaxKeyTypeNameLength);
	if (!inner_type)
		return tl::unexpected(inner_type.error());
	if (*inner_type != type)
		return fail(Errc::invalid, "invalid public key line: the line names key type " + escape_untrusted(type) +
		                               " but the key data is " + escape_untrusted(*inner_type));
	return PublicKeyLine{std::string(type), std::move(*blob)};
}

}  // namespace jead
