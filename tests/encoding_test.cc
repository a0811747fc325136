// Base64 encoding against the RFC 4648 section 10 test vectors.
#include <catch2/catch.hpp>

#include <string>

#include "common/encoding.h"

using jead::as_bytes;

TEST_CASE("base64 encodes RFC 4648 vectors", "[encoding]")
{
	CHECK(jead::base64_encode(as_bytes(std::string(""))) == "");
	CHECK(jead::base64_encode(as_bytes(std::string("f"))) == "Zg==");
	CHECK(jead::base64_encode(as_bytes(std::string("fo"))) == "Zm8=");
	CHECK(jead::base64_encode(as_bytes(std::string("foo"))) == "Zm9v");
	CHECK(jead::base64_encode(as_bytes(std::string("foob"))) == "Zm9vYg==");
	CHECK(jead::base64_encode(as_bytes(std::string("fooba"))) == "Zm9vYmE=");
	CHECK(jead::base64_encode(as_bytes(std::string("foobar"))) == "Zm9vYmFy");
}

TEST_CASE("base64 without padding", "[encoding]")
{
	CHECK(jead::base64_encode(as_bytes(std::string("f")), false) == "Zg");
	CHECK(jead::base64_encode(as_bytes(std::string("fo")), false) == "Zm8");
	CHECK(jead::base64_encode(as_bytes(std::string("foo")), false) == "Zm9v");
}

TEST_CASE("base64_append keeps existing text", "[encoding]")
{
	std::string out = "{\"b64\":\"";
	jead::base64_append(out, as_bytes(std::string("\xff\x00\x01", 3)));
	CHECK(out == "{\"b64\":\"/wAB");
	jead::base64_append(out, as_bytes(std::string("fooba")));
	CHECK(out == "{\"b64\":\"/wABZm9vYmE=");
}
