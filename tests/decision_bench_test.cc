// The cost of one policy decision (tokenize, look up the verb, validate
// five typed arguments, fill the argv template). A figure, not a timed
// assertion: run it with `jead_tests "[.bench]"`.
#include <catch2/catch.hpp>

#include <chrono>
#include <iostream>

#include "roles/policy.h"
#include "roles/role.h"

TEST_CASE("decision cost per command line", "[.bench]")
{
	const char* const role_text = R"(description = "Bench"
[[verb]]
name = "deploy"
command = ["/usr/bin/true", "{unit}", "{count}", "{tag}", "{host}", "{timeout}"]
args = [
  { name = "unit", type = "enum", values = ["nginx.service", "php-fpm.service", "redis.service"] },
  { name = "count", type = "int", min = 1, max = 1000 },
  { name = "tag", type = "string", pattern = "[a-z0-9][a-z0-9.-]*", max_length = 32 },
  { name = "host", type = "hostname" },
  { name = "timeout", type = "duration" },
]
)";
	auto role = jead::parse_role(role_text, "bench.toml");
	REQUIRE(role);
	const std::string line = "deploy php-fpm.service 250 release-2026.12 web-01.example.org 90s";
	REQUIRE(jead::decide(*role, line).allowed);

	constexpr int kIterations = 200000;
	std::size_t allowed = 0;
	const auto start = std::chrono::steady_clock::now();
	for (int i = 0; i < kIterations; ++i)
		allowed += jead::decide(*role, line).allowed ? 1 : 0;
	const auto elapsed = std::chrono::steady_clock::now() - start;
	const double ns = std::chrono::duration<double, std::nano>(elapsed).count() / kIterations;

	std::cout << "decision: " << ns << " ns per command line of 5 typed arguments (" << kIterations
	          << " runs)\n";
	CHECK(allowed == static_cast<std::size_t>(kIterations));
}
