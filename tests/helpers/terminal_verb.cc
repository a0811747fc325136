// A verb program for the interactive-verb tests. It prints the state of its
// standard streams, one line each:
//   isatty 0=A 1=B 2=C    isatty() of stdin, stdout and stderr (1 or 0)
//   size COLSxROWS        TIOCGWINSZ on stdin, or "size none"
//   term VALUE            $TERM
// then prompts "ready> ", reads one line from stdin and prints
// "got [LINE]", or "got nothing" at end of input.
//   terminal_verb [--wait-resize]
// With --wait-resize it then waits (at most 30 s) for SIGWINCH and prints
// "resized COLSxROWS", or "no resize".
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace {

void print_size(const char* label)
{
	winsize size{};
	if (::ioctl(0, TIOCGWINSZ, &size) != 0)
		std::printf("%s none\n", label);
	else
		std::printf("%s %ux%u\n", label, size.ws_col, size.ws_row);
	std::fflush(stdout);
}

// Returns the next line without its newline, or nothing at end of input
// before any byte.
std::optional<std::string> read_line()
{
	std::string line;
	char c = 0;
	while (::read(0, &c, 1) == 1) {
		if (c == '\n')
			return line;
		line += c;
	}
	if (line.empty())
		return std::nullopt;
	return line;
}

}  // namespace

int main(int argc, char** argv)
{
	const bool wait_resize = argc > 1 && std::strcmp(argv[1], "--wait-resize") == 0;

	// Blocked from the start, so a window change that comes before the
	// wait stays pending instead of being lost.
	sigset_t winch;
	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	::sigprocmask(SIG_BLOCK, &winch, nullptr);

	std::printf("isatty 0=%d 1=%d 2=%d\n", ::isatty(0), ::isatty(1), ::isatty(2));
	print_size("size");
	const char* term = std::getenv("TERM");
	std::printf("term %s\nready> ", term ? term : "(unset)");
	std::fflush(stdout);

	const auto line = read_line();
	if (line)
		std::printf("got [%s]\n", line->c_str());
	else
		std::printf("got nothing\n");
	std::fflush(stdout);

	if (wait_resize) {
		const timespec timeout{30, 0};
		if (::sigtimedwait(&winch, nullptr, &timeout) == SIGWINCH)
			print_size("resized");
		else
			std::printf("no resize\n");
	}
	return 0;
}
