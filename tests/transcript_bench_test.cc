// Throughput of TranscriptWriter::output for zeros and for text. Hidden
// from the default run by the [.bench] tag; run it with
//
//   jead_tests "[.bench]"
//
// JEAD_BENCH_BYTES sets the bytes per stream (default 1 GiB) and
// JEAD_BENCH_DIR the directory of the scratch transcripts (default
// /dev/shm, a tmpfs on most Linux systems, so the disk does not count).
// The case prints CPU and wall time and the file size, and asserts nothing
// about time. CPU time is the figure to compare on a shared machine.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "transcripts/writer.h"

namespace fs = std::filesystem;
using namespace jead;

namespace {

std::uint64_t bench_bytes()
{
	const char* text = std::getenv("JEAD_BENCH_BYTES");
	if (text == nullptr || *text == '\0')
		return std::uint64_t{1} << 30;
	return std::strtoull(text, nullptr, 10);
}

fs::path bench_dir()
{
	const char* text = std::getenv("JEAD_BENCH_DIR");
	fs::path base = text != nullptr && *text != '\0' ? fs::path(text) : fs::path("/dev/shm");
	std::string pattern = (base / "jead-bench-XXXXXX").string();
	REQUIRE(::mkdtemp(pattern.data()) != nullptr);
	return pattern;
}

TranscriptHeader bench_header(std::string session_id)
{
	TranscriptHeader h;
	h.session_id = std::move(session_id);
	h.host = "bench";
	h.role = "bench";
	h.mode = "exec";
	return h;
}

double cpu_seconds()
{
	rusage usage{};
	::getrusage(RUSAGE_SELF, &usage);
	const auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
	return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Writes `total` bytes as repeated `chunk`s through one writer, then prints
// the time and the file size, and deletes the file.
void measure(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& chunk,
             std::uint64_t total)
{
	auto writer = TranscriptWriter::create(dir, bench_header(name));
	REQUIRE(writer);

	const auto start = std::chrono::steady_clock::now();
	const double cpu_start = cpu_seconds();
	// Each pass writes one chunk, so the loop runs total / chunk.size() times.
	for (std::uint64_t written = 0; written < total; written += chunk.size())
		REQUIRE((*writer)->output(OutputStream::stdout_, chunk));
	REQUIRE((*writer)->end("exit"));
	const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
	const double cpu = cpu_seconds() - cpu_start;

	const auto file_bytes = fs::file_size((*writer)->path());
	const double mib = static_cast<double>(total) / (1024.0 * 1024.0);
	std::cout << name << ": " << total << " bytes, CPU " << cpu << " s (" << mib / cpu << " MiB/s), wall "
	          << elapsed.count() << " s, transcript " << file_bytes << " bytes ("
	          << static_cast<double>(file_bytes) / static_cast<double>(total) << "x)\n";
	fs::remove((*writer)->path());
}

}  // namespace

TEST_CASE("writer output throughput", "[.bench]")
{
	const std::uint64_t total = bench_bytes();
	const fs::path dir = bench_dir();

	// 32 KiB chunks, the size the server reads from a pipe at a time.
	const std::vector<std::uint8_t> zeros(32 * 1024, 0);
	std::vector<std::uint8_t> text;
	const std::string line = "Dec  4 20:07:00 db1 nginx[812]: 192.0.2.7 \"GET /index.html\" 200 5120\n";
	while (text.size() + line.size() <= 32 * 1024)
		text.insert(text.end(), line.begin(), line.end());

	measure(dir, "zeros", zeros, total);
	measure(dir, "text", text, total);
	fs::remove_all(dir);
}
