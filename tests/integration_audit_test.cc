// End to end: transcripts of concurrent sessions, digest recording of a
// large stream, and the idle timeout, against a real jead.
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "tests/support.h"

using namespace jead::test;

namespace {

const char* const kAuditRole = R"(description = "Verbs for audit tests"

[[verb]]
name = "backup"
description = "Stream N bytes of zeros, recorded as a digest"
command = ["/usr/bin/head", "-c", "{bytes}", "/dev/zero"]
args = [ { name = "bytes", type = "int", min = 1, max = 4294967296 } ]
max_output = "8G"
record_output = "digest"

[[verb]]
name = "hello"
description = "Say hello"
command = ["/usr/bin/echo", "hello"]
)";

struct AuditFixture {
	TempDir tmp;
	JeadServer server;
	std::filesystem::path key = tmp.path() / "user";
	std::filesystem::path cert;

	explicit AuditFixture(const std::string& extra_config = "")
		: server(tmp.path(), {{{"ops", kAuditRole}}, {{"ops", {"ops"}}}, extra_config})
	{
		make_key(key);
		cert = sign_key(server.ca(), key, {});
	}
};

}  // namespace

TEST_CASE("digest recording proves a 1 GiB stream", "[integration]")
{
	AuditFixture f;
	const std::size_t size = 1ull << 30;
	const auto result = f.server.ssh("ops", f.key, f.cert, {"backup", std::to_string(size)});
	REQUIRE(result.exit_status == 0);
	REQUIRE(result.out.size() == size);
	const std::string client_hash = jead::hex_encode(jead::sha256(jead::as_bytes(result.out)));

	const auto files = f.server.transcripts();
	REQUIRE(files.size() == 1);
	const auto text = read_text(files[0]);
	CHECK(text.size() < 64 * 1024);                           // no output records, only the digest
	CHECK(text.find(client_hash) != std::string::npos);
	CHECK(text.find(std::to_string(size)) != std::string::npos);

	const auto verify = run_program({JEA_REPLAY_BINARY, "verify", files[0].string()});
	CHECK(verify.exit_status == 0);
}

TEST_CASE("fifty concurrent sessions all verify", "[integration]")
{
	AuditFixture f("max_unauthenticated_per_source = 64\nmax_sessions_per_certificate = 64\n");
	std::vector<std::future<ProcessResult>> sessions;
	for (int i = 0; i < 50; ++i)
		sessions.push_back(std::async(std::launch::async, [&] { return f.server.ssh("ops", f.key, f.cert, {"hello"}); }));
	int succeeded = 0;
	for (auto& session : sessions) {
		const auto result = session.get();
		succeeded += result.exit_status == 0 && result.out == "hello\n" ? 1 : 0;
	}
	CHECK(succeeded == 50);

	const auto files = f.server.transcripts();
	CHECK(files.size() == 50);
	const auto verify = run_program({JEA_REPLAY_BINARY, "verify", f.server.transcript_dir().string()});
	INFO(verify.out << verify.err);
	CHECK(verify.exit_status == 0);
}

TEST_CASE("idle shell ends with a message", "[integration]")
{
	AuditFixture f("idle_timeout = \"2s\"\n");
	PtySession shell(ssh_argv(f.server, "ops", f.key, f.cert, {"-tt"}, {}));
	REQUIRE(shell.wait_for("ops ["));

	CHECK(shell.wait_for("idle for 2s (idle_timeout); the session is over", std::chrono::seconds(10)));
	CHECK(shell.wait_exit() == 80);
	const auto text = read_text(f.server.transcripts().back());
	CHECK(text.find("\"reason\":\"idle-timeout\"") != std::string::npos);
}
