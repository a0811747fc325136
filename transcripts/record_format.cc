#include "transcripts/record_format.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/escape.h"

namespace jead::transcript {

bool is_end_reason(std::string_view reason)
{
	return std::find(kEndReasons.begin(), kEndReasons.end(), reason) != kEndReasons.end();
}

bool is_sha256_hex(std::string_view text)
{
	if (text.size() != 64)
		return false;
	return std::all_of(text.begin(), text.end(), [](char c) {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
	});
}

nlohmann::ordered_json encode_bytes(std::string_view bytes)
{
	if (is_valid_utf8(bytes))
		return std::string(bytes);
	return nlohmann::ordered_json{{"b64", base64_encode(as_bytes(bytes))}};
}

Result<std::string> decode_bytes(const nlohmann::ordered_json& value)
{
	if (value.is_string())
		return value.get<std::string>();

	if (!value.is_object() || value.size() != 1 || !value.contains("b64"))
		return fail(Errc::invalid, "expected a string or an object {\"b64\": ...}");
	const auto& encoded = value["b64"];
	if (!encoded.is_string())
		return fail(Errc::invalid, "\"b64\" must be a string");

	auto decoded = base64_decode(encoded.get_ref<const std::string&>());
	if (!decoded)
		return tl::unexpected(decoded.error());
	return std::string(decoded->begin(), decoded->end());
}

std::string line_hash(std::string_view line)
{
	return hex_encode(sha256(as_bytes(line)));
}

}  // namespace jead::transcript
