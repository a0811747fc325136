// libFuzzer target for the typed argument validators (roles/arguments.cc).
// The first input byte picks the argument type, the rest is the value.
// Checks that no validator crashes, that every accepted value is free of
// control bytes and starts with '-' only where the type allows it, and that
// validating a canonical value again returns the same text. Path values are
// resolved under /tmp, so the target reads (never writes) that directory.
//
// Not built by CMake. Build and run from the repository root:
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     fuzz/args_fuzz.cc roles/arguments.cc common/escape.cc common/duration.cc -o /tmp/args_fuzz
//   /tmp/args_fuzz -max_total_time=30 -max_len=2048 fuzz/corpus/args
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "roles/arguments.h"

namespace {

void require(bool condition)
{
	if (!condition)
		__builtin_trap();
}

std::vector<jead::ArgSpec> make_specs()
{
	using jead::ArgSpec;
	using jead::ArgType;
	std::vector<ArgSpec> specs;

	ArgSpec enum_spec;
	enum_spec.name = "unit";
	enum_spec.type = ArgType::enum_;
	enum_spec.values = {"nginx.service", "--utc", ""};
	specs.push_back(enum_spec);

	ArgSpec int_spec;
	int_spec.name = "count";
	int_spec.type = ArgType::int_;
	int_spec.min = INT64_MIN;
	int_spec.max = INT64_MAX;
	specs.push_back(int_spec);

	ArgSpec positive = int_spec;
	positive.min = 1;
	positive.max = 600;
	specs.push_back(positive);

	ArgSpec string_spec;
	string_spec.name = "revision";
	string_spec.type = ArgType::string;
	string_spec.pattern = "([A-Za-z0-9._/-]|(ab)*c)+";
	string_spec.compiled_pattern = *jead::compile_pattern(string_spec.pattern);
	string_spec.max_length = 1024;
	specs.push_back(string_spec);

	ArgSpec path_spec;
	path_spec.name = "path";
	path_spec.type = ArgType::path;
	path_spec.prefixes = {"/tmp"};
	path_spec.must_exist = false;
	specs.push_back(path_spec);

	ArgSpec hostname_spec;
	hostname_spec.name = "host";
	hostname_spec.type = ArgType::hostname;
	specs.push_back(hostname_spec);

	ArgSpec permissive_host = hostname_spec;
	permissive_host.allow_ip = true;
	permissive_host.allow_trailing_dot = true;
	permissive_host.allow_idn = true;
	specs.push_back(permissive_host);

	ArgSpec ip_spec;
	ip_spec.name = "address";
	ip_spec.type = ArgType::ip;
	specs.push_back(ip_spec);

	ArgSpec cidr_spec;
	cidr_spec.name = "network";
	cidr_spec.type = ArgType::cidr;
	specs.push_back(cidr_spec);

	ArgSpec duration_spec;
	duration_spec.name = "since";
	duration_spec.type = ArgType::duration;
	specs.push_back(duration_spec);

	ArgSpec size_spec;
	size_spec.name = "limit";
	size_spec.type = ArgType::size;
	specs.push_back(size_spec);

	ArgSpec flag_spec;
	flag_spec.name = "dry-run";
	flag_spec.type = ArgType::flag;
	flag_spec.flag_text = "--dry-run";
	specs.push_back(flag_spec);
	return specs;
}

bool may_start_with_dash(const jead::ArgSpec& spec)
{
	return spec.type == jead::ArgType::enum_ || spec.type == jead::ArgType::flag ||
	       (spec.type == jead::ArgType::int_ && spec.min < 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	static const std::vector<jead::ArgSpec> specs = make_specs();
	if (size == 0)
		return 0;

	const jead::ArgSpec& spec = specs[data[0] % specs.size()];
	const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
	auto canonical = jead::validate_argument(spec, value);
	if (!canonical) {
		require(!canonical.error().message.empty());
		return 0;
	}

	for (const char c : *canonical) {
		const auto b = static_cast<unsigned char>(c);
		require(b >= 0x20 && b != 0x7F);
	}
	if (!canonical->empty() && canonical->front() == '-')
		require(may_start_with_dash(spec));

	// The path validator reads the file system, which may change between
	// two calls, so idempotence is checked for the pure validators only.
	if (spec.type != jead::ArgType::path) {
		auto again = jead::validate_argument(spec, *canonical);
		require(again.has_value() && *again == *canonical);
	}
	return 0;
}
