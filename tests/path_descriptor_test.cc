// Path arguments with bind = "descriptor": the loader's keys, where each
// descriptor goes in argv, and spawn_process() opening the file beneath its
// prefix in the child, rejecting links that appear after the check.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "roles/arguments.h"
#include "roles/policy.h"
#include "server/process.h"
#include "tests/spawn_support.h"
#include "tests/support.h"

using namespace jead;
using namespace jead::test;
namespace fs = std::filesystem;

namespace {

// A tree with a prefix directory "logs" holding app.log, a subdirectory
// and an outside file that links may point at.
struct Tree {
	TempDir tmp;
	fs::path root = fs::canonical(tmp.path());
	fs::path prefix = root / "logs";
	fs::path outside = root / "secret";

	Tree()
	{
		fs::create_directories(prefix / "sub");
		write_text(prefix / "app.log", "app line\n");
		write_text(prefix / "sub" / "deep.log", "deep line\n");
		write_text(outside, "secret line\n");
	}
};

SpawnRequest request_for(const std::vector<std::string>& argv, PathDescriptor descriptor)
{
	SpawnRequest request;
	request.argv = argv;
	request.environment = base_environment();
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	request.run_as = *run_as;
	request.path_descriptors.push_back(std::move(descriptor));
	return request;
}

PathDescriptor descriptor(const Tree& tree, std::size_t argv_index, const std::string& relative,
                          PathKind kind = PathKind::any)
{
	return PathDescriptor{argv_index, "file", (tree.prefix / relative).string(), tree.prefix.string(), relative,
	                      kind};
}

Role role_from(const TempDir& tmp, const std::string& text)
{
	const auto file = tmp.path() / "r.toml";
	write_text(file, text);
	auto role = load_role_file(file);
	if (!role)
		FAIL(role.error().message);
	return std::move(*role);
}

std::string role_error(const TempDir& tmp, const std::string& text)
{
	const auto file = tmp.path() / "r.toml";
	write_text(file, text);
	auto role = load_role_file(file);
	REQUIRE_FALSE(role.has_value());
	return role.error().message;
}

std::string show_role(const fs::path& prefix, const std::string& extra_keys)
{
	return "description = \"d\"\n[[verb]]\nname = \"show\"\ndescription = \"d\"\n"
	       "command = [\"/usr/bin/cat\", \"--\", \"{file}\", \"{more}\"]\n"
	       "args = [ { name = \"file\", type = \"path\", prefixes = [\"" +
	       prefix.string() + "\"], kind = \"file\"" + extra_keys +
	       " },\n"
	       "         { name = \"more\", type = \"path\", prefixes = [\"" +
	       prefix.string() + "\"], variadic = true, max_count = 3, optional = true" + extra_keys + " } ]\n";
}

}  // namespace

TEST_CASE("descriptor path opens the checked file", "[process][path-descriptor]")
{
	Tree tree;
	auto process = spawn_process(request_for({"/usr/bin/cat", "--", "placeholder"}, descriptor(tree, 2, "app.log")));
	REQUIRE(process);
	const SpawnOutput output = collect_output(*process);
	INFO("stderr: " << output.err);
	CHECK(WIFEXITED(output.wait_status));
	CHECK(WEXITSTATUS(output.wait_status) == 0);
	CHECK(output.out == "app line\n");
}

TEST_CASE("descriptor argv element is a proc fd", "[process][path-descriptor]")
{
	Tree tree;
	auto echoed = spawn_process(request_for({"/usr/bin/echo", "x"}, descriptor(tree, 1, "sub/deep.log")));
	REQUIRE(echoed);
	const SpawnOutput element = collect_output(*echoed);
	CHECK_THAT(element.out, Catch::Matches("/proc/self/fd/[0-9]+\n"));

	// readlink runs in the process that has the descriptor, so it prints
	// the file the descriptor is open on: the checked one.
	auto linked = spawn_process(request_for({"/usr/bin/readlink", "x"}, descriptor(tree, 1, "sub/deep.log")));
	REQUIRE(linked);
	const SpawnOutput target = collect_output(*linked);
	INFO("stderr: " << target.err);
	CHECK(target.out == (tree.prefix / "sub" / "deep.log").string() + "\n");
}

TEST_CASE("descriptor rejects links made after check", "[process][path-descriptor]")
{
	Tree tree;
	SECTION("final component")
	{
		fs::create_symlink(tree.outside, tree.prefix / "swapped.log");
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "swapped.log")));
		REQUIRE_FALSE(process);
		CHECK_THAT(process.error().message, Catch::Contains("opening path argument \"file\""));
		CHECK_THAT(process.error().message, Catch::Contains("Too many levels of symbolic links"));
	}
	SECTION("directory component pointing out of the prefix")
	{
		fs::create_directories(tree.root / "elsewhere");
		write_text(tree.root / "elsewhere" / "deep.log", "elsewhere\n");
		fs::remove_all(tree.prefix / "sub");
		fs::create_directory_symlink(tree.root / "elsewhere", tree.prefix / "sub");
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "sub/deep.log")));
		REQUIRE_FALSE(process);
		CHECK_THAT(process.error().message, Catch::Contains("sub/deep.log"));
	}
	SECTION("link that stays inside the prefix")
	{
		fs::create_symlink(tree.prefix / "app.log", tree.prefix / "alias.log");
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "alias.log")));
		REQUIRE_FALSE(process);
	}
}

TEST_CASE("descriptor kind checked on open file", "[process][path-descriptor]")
{
	Tree tree;
	SECTION("a directory where a file is required")
	{
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "sub", PathKind::file)));
		REQUIRE_FALSE(process);
		CHECK_THAT(process.error().message, Catch::Contains("Is a directory"));
	}
	SECTION("a file where a directory is required")
	{
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "app.log", PathKind::dir)));
		REQUIRE_FALSE(process);
		CHECK_THAT(process.error().message, Catch::Contains("Not a directory"));
	}
	SECTION("a FIFO is rejected without blocking")
	{
		REQUIRE(::mkfifo((tree.prefix / "pipe").c_str(), 0600) == 0);
		auto process = spawn_process(request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "pipe")));
		REQUIRE_FALSE(process);
		CHECK_THAT(process.error().message, Catch::Contains("Invalid argument"));
	}
	SECTION("the prefix itself as a directory")
	{
		auto process = spawn_process(request_for({"/usr/bin/ls", "x"}, descriptor(tree, 1, ".", PathKind::dir)));
		REQUIRE(process);
		const SpawnOutput output = collect_output(*process);
		CHECK(output.out == "app.log\nsub\n");
	}
}

TEST_CASE("descriptor opened as run-as user", "[process][path-descriptor]")
{
	if (::geteuid() != 0) {
		WARN("not root: the run-as identity cannot be tested");
		return;
	}
	Tree tree;
	fs::permissions(tree.root, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
	fs::permissions(tree.prefix, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
	fs::permissions(tree.prefix / "app.log", fs::perms::owner_read | fs::perms::owner_write);
	SpawnRequest request = request_for({"/usr/bin/cat", "x"}, descriptor(tree, 1, "app.log"));
	auto nobody = resolve_run_as(std::string("nobody"), std::nullopt);
	REQUIRE(nobody);
	request.run_as = *nobody;
	auto process = spawn_process(request);
	REQUIRE_FALSE(process);
	CHECK_THAT(process.error().message, Catch::Contains("as nobody failed"));
	CHECK_THAT(process.error().message, Catch::Contains("Permission denied"));
}

TEST_CASE("path_descriptors maps values to argv", "[roles][path-descriptor]")
{
	Tree tree;
	const Role role = role_from(tree.tmp, show_role(tree.prefix, ", bind = \"descriptor\""));
	const std::string log = (tree.prefix / "app.log").string();
	const std::string deep = (tree.prefix / "sub" / "deep.log").string();
	const Decision decision = decide(role, "show " + log + " " + deep + " " + tree.prefix.string());
	REQUIRE(decision.allowed);
	auto descriptors = path_descriptors(decision);
	REQUIRE(descriptors);
	REQUIRE(descriptors->size() == 3);
	CHECK((*descriptors)[0].argv_index == 2);
	CHECK((*descriptors)[0].relative == "app.log");
	CHECK((*descriptors)[0].kind == PathKind::file);
	CHECK((*descriptors)[1].argv_index == 3);
	CHECK((*descriptors)[1].relative == "sub/deep.log");
	CHECK((*descriptors)[2].argv_index == 4);
	CHECK((*descriptors)[2].relative == ".");
	for (const auto& d : *descriptors) {
		CHECK(d.directory == tree.prefix.string());
		CHECK(decision.argv[d.argv_index] == d.path);
	}

	const Role by_name = role_from(tree.tmp, show_role(tree.prefix, ""));
	const Decision plain = decide(by_name, "show " + log);
	REQUIRE(plain.allowed);
	auto none = path_descriptors(plain);
	REQUIRE(none);
	CHECK(none->empty());
}

TEST_CASE("descriptor uses the innermost prefix", "[roles][path-descriptor]")
{
	Tree tree;
	ArgSpec spec;
	spec.name = "file";
	spec.type = ArgType::path;
	spec.prefixes = {tree.root.string(), tree.prefix.string()};
	auto target = path_descriptor_target(spec, (tree.prefix / "sub" / "deep.log").string());
	REQUIRE(target);
	CHECK(target->directory == tree.prefix.string());
	CHECK(target->relative == "sub/deep.log");
}

TEST_CASE("bind and follow_symlinks keys load", "[roles][path-descriptor]")
{
	Tree tree;
	CHECK(role_from(tree.tmp, show_role(tree.prefix, ", bind = \"descriptor\"")).verbs[0].args[0].bind_descriptor);
	CHECK_FALSE(role_from(tree.tmp, show_role(tree.prefix, ", bind = \"name\"")).verbs[0].args[0].bind_descriptor);
	CHECK_FALSE(
		role_from(tree.tmp, show_role(tree.prefix, ", follow_symlinks = false")).verbs[0].args[0].follow_symlinks);

	CHECK_THAT(role_error(tree.tmp, show_role(tree.prefix, ", bind = \"fd\"")),
	           Catch::Contains("unknown \"bind\" \"fd\" (expected \"name\" or \"descriptor\")"));
	CHECK_THAT(role_error(tree.tmp, show_role(tree.prefix, ", must_exist = false, bind = \"descriptor\"")),
	           Catch::Contains("needs must_exist = true"));
	CHECK_THAT(role_error(tree.tmp, show_role(tree.prefix, ", follow_symlinks = \"no\"")),
	           Catch::Contains("follow_symlinks"));
}

TEST_CASE("follow_symlinks false rejects links", "[roles][path-descriptor]")
{
	Tree tree;
	fs::create_symlink(tree.prefix / "app.log", tree.prefix / "alias.log");
	const std::string alias = (tree.prefix / "alias.log").string();

	const Role following = role_from(tree.tmp, show_role(tree.prefix, ""));
	const Decision followed = decide(following, "show " + alias);
	REQUIRE(followed.allowed);
	CHECK(followed.argv[2] == (tree.prefix / "app.log").string());

	const Role strict = role_from(tree.tmp, show_role(tree.prefix, ", follow_symlinks = false"));
	const Decision refused = decide(strict, "show " + alias);
	CHECK_FALSE(refused.allowed);
	CHECK_THAT(refused.reason, Catch::Contains("leads through a symbolic link"));
	CHECK(decide(strict, "show " + (tree.prefix / "app.log").string()).allowed);
}

TEST_CASE("follow_symlinks false allows linked prefix", "[roles][path-descriptor]")
{
	Tree tree;
	const fs::path linked = tree.root / "linked";
	fs::create_directory_symlink(tree.prefix, linked);
	const Role strict = role_from(tree.tmp, show_role(linked, ", follow_symlinks = false"));
	const Decision decision = decide(strict, "show " + (linked / "app.log").string());
	INFO(decision.reason);
	REQUIRE(decision.allowed);
	CHECK(decision.argv[2] == (tree.prefix / "app.log").string());
}
