// libFuzzer target for parse_certificate and the checks that read what it
// returns: check_certificate (with the certificate's own CA trusted, so
// signature verification runs) and source_address_allows.
//
// Build and run from the repository root (not wired into CMake):
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     fuzz/cert_fuzz.cc server/cert/*.cc common/*.cc -lssl -lcrypto -o /tmp/cert_fuzz
//   /tmp/cert_fuzz -max_total_time=30 /tmp/cert_corpus fuzz/corpus/cert
// The seeds in fuzz/corpus/cert are raw certificate blobs (the decoded
// base64 of -cert.pub files) minted with ssh-keygen 9.2.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "server/cert/certificate.h"
#include "server/cert/source_address.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const std::span<const std::uint8_t> blob(data, size);
	auto cert = jead::parse_certificate(blob);
	if (!cert)
		return 0;

	// signed_data must be a prefix of the input, and the signature must
	// fill the rest after its 4-byte length.
	if (cert->signed_data.size() + 4 + cert->signature.size() != size ||
	    !std::equal(cert->signed_data.begin(), cert->signed_data.end(), data))
		__builtin_trap();

	jead::CertPolicy policy;
	policy.trusted_ca_keys.push_back(cert->signature_key);
	policy.allow_sk_keys = true;
	policy.signature.allow_ssh_rsa_sha1 = true;
	const auto now = static_cast<std::int64_t>(cert->valid_after & 0x3FFFFFFFFFFFFFFF);
	(void)jead::check_certificate(*cert, policy, now);

	if (const auto* option = jead::find_critical_option(*cert, "source-address")) {
		(void)jead::source_address_allows(option->data, "192.0.2.1");
		(void)jead::source_address_allows(option->data, "::ffff:10.0.0.1");
	}
	return 0;
}
