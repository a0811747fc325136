#include "transcripts/record_format.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/escape.h"

namespace jead::transcript {

bool is_end_reason(std::string_view reason)
{
	return std::find(kEndReasons.begin(), kEndReasons.end(), reason) != kEndReasons.end();
}

std::string_view data_stream_name(DataStream stream)
{
	switch (stream) {
	case DataStream::stdout_: return "stdout";
	case DataStream::stderr_: return "stderr";
	case DataStream::stdin_: return "stdin";
	case DataStream::keystrokes: return "keystrokes";
	}
	return "stdout";
}

bool parse_data_stream(std::string_view name, DataStream& stream)
{
	for (const DataStream candidate :
	     {DataStream::stdout_, DataStream::stderr_, DataStream::stdin_, DataStream::keystrokes}) {
		if (name == data_stream_name(candidate)) {
			stream = candidate;
			return true;
		}
	}
	return false;
}

std::string_view recording_mode_name(StreamRecording::Mode mode)
{
	switch (mode) {
	case StreamRecording::Mode::full: return "full";
	case StreamRecording::Mode::head_tail: return "head-tail";
	case StreamRecording::Mode::digest: return "digest";
	}
	return "full";
}

bool parse_recording_mode(std::string_view name, StreamRecording::Mode& mode)
{
	for (const auto candidate :
	     {StreamRecording::Mode::full, StreamRecording::Mode::head_tail, StreamRecording::Mode::digest}) {
		if (name == recording_mode_name(candidate)) {
			mode = candidate;
			return true;
		}
	}
	return false;
}

bool is_sha256_hex(std::string_view text)
{
	if (text.size() != 64)
		return false;
	return std::all_of(text.begin(), text.end(), [](char c) {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
	});
}

bool fits_json_string(std::string_view bytes)
{
	// JSON writes tab, LF, CR, '"' and '\\' as two-byte escapes and every
	// other C0 control as a six-byte \u00XX escape.
	std::size_t escapes = 0;
	for (const char c : bytes) {
		const auto b = static_cast<unsigned char>(c);
		if (b == '\t' || b == '\n' || b == '\r' || b == '"' || b == '\\')
			++escapes;
		else if (b < 0x20)
			return false;
	}
	// Compare the two encodings: "..." against {"b64":"..."}, whose base64
	// is 4 characters per started 3 bytes.
	const std::size_t string_size = bytes.size() + escapes + 2;
	const std::size_t base64_size = (bytes.size() + 2) / 3 * 4 + 10;
	if (string_size > base64_size)
		return false;
	return is_valid_utf8(bytes);
}

nlohmann::ordered_json encode_bytes(std::string_view bytes)
{
	if (fits_json_string(bytes))
		return std::string(bytes);
	return nlohmann::ordered_json{{"b64", base64_encode(as_bytes(bytes))}};
}

void append_json_bytes(std::string& out, std::string_view bytes)
{
	if (!fits_json_string(bytes)) {
		out += "{\"b64\":\"";
		base64_append(out, as_bytes(bytes));
		out += "\"}";
		return;
	}

	// fits_json_string() leaves only these five bytes to escape. dump()
	// writes UTF-8 and DEL as they are, and so does this.
	out.reserve(out.size() + bytes.size() + 2);
	out += '"';
	std::size_t start = 0;
	for (std::size_t i = 0; i < bytes.size(); ++i) {
		const char* escape = nullptr;
		switch (bytes[i]) {
		case '"': escape = "\\\""; break;
		case '\\': escape = "\\\\"; break;
		case '\t': escape = "\\t"; break;
		case '\n': escape = "\\n"; break;
		case '\r': escape = "\\r"; break;
		default: continue;
		}
		out.append(bytes, start, i - start);
		out += escape;
		start = i + 1;
	}
	out.append(bytes, start, bytes.size() - start);
	out += '"';
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
