// A verb program for integration tests. It appends one line to a marker
// file (proof that it ran), then does what its options ask:
//   test_verb --marker FILE [--exit N] [--env] [--sleep S] [--stderr TEXT] [--wait-for FILE] [--] ARGS...
// and prints "args:" followed by each argument in brackets on stdout.
// --wait-for waits, at most 20 s, for FILE to exist before anything else.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

extern char** environ;

int main(int argc, char** argv)
{
	std::string marker;
	int exit_status = 0;
	bool print_env = false;
	int sleep_seconds = 0;
	std::string stderr_text;
	std::string wait_for;
	int i = 1;
	for (; i < argc; ++i) {
		const std::string arg = argv[i];
		if (arg == "--" ) {
			++i;
			break;
		}
		if (arg == "--env") {
			print_env = true;
		} else if (i + 1 < argc && arg == "--marker") {
			marker = argv[++i];
		} else if (i + 1 < argc && arg == "--exit") {
			exit_status = std::atoi(argv[++i]);
		} else if (i + 1 < argc && arg == "--sleep") {
			sleep_seconds = std::atoi(argv[++i]);
		} else if (i + 1 < argc && arg == "--stderr") {
			stderr_text = argv[++i];
		} else if (i + 1 < argc && arg == "--wait-for") {
			wait_for = argv[++i];
		} else {
			break;
		}
	}

	for (int step = 0; !wait_for.empty() && step < 400 && ::access(wait_for.c_str(), F_OK) != 0; ++step)
		::usleep(50000);

	if (!marker.empty()) {
		std::ofstream out(marker, std::ios::app);
		out << "ran" << '\n';
	}

	std::cout << "args:";
	for (; i < argc; ++i)
		std::cout << " [" << argv[i] << "]";
	std::cout << std::endl;

	if (print_env) {
		for (char** e = environ; *e; ++e)
			std::cout << "env: " << *e << '\n';
		std::cout << std::flush;
	}
	if (!stderr_text.empty())
		std::cerr << stderr_text << std::endl;
	for (int s = 0; s < sleep_seconds; ++s)
		::sleep(1);
	return exit_status;
}
