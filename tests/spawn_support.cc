#include "tests/spawn_support.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <catch2/catch.hpp>

namespace jead::test {

SpawnOutput collect_output(SpawnedProcess& process, std::chrono::seconds timeout)
{
	SpawnOutput output;
	int fds[2] = {process.stdout_fd.get(), process.stderr_fd.get()};
	std::string* sinks[2] = {&output.out, &output.err};
	const auto deadline = std::chrono::steady_clock::now() + timeout;
	while ((fds[0] >= 0 || fds[1] >= 0) && std::chrono::steady_clock::now() < deadline) {
		pollfd polled[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
		::poll(polled, 2, 200);
		for (int i = 0; i < 2; ++i) {
			if (fds[i] < 0 || polled[i].revents == 0)
				continue;
			char buffer[4096];
			const ssize_t n = ::read(fds[i], buffer, sizeof buffer);
			if (n > 0)
				sinks[i]->append(buffer, static_cast<std::size_t>(n));
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
				fds[i] = -1;
		}
	}
	REQUIRE(fds[0] < 0);
	REQUIRE(fds[1] < 0);
	REQUIRE(::waitpid(process.pid, &output.wait_status, 0) == process.pid);
	return output;
}

}  // namespace jead::test
