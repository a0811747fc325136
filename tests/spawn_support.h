// Reading a spawned program to its end, for tests that call spawn_process()
// directly.
#pragma once

#include <chrono>
#include <string>

#include "server/process.h"

namespace jead::test {

struct SpawnOutput {
	std::string out;
	std::string err;
	int wait_status = 0;   // as from waitpid
};

// Reads stdout and stderr to their end and reaps the process. Fails the
// test when the output has not ended within `timeout`.
SpawnOutput collect_output(SpawnedProcess& process, std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace jead::test
