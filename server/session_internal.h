// Helpers shared by the session source files; not part of any interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "roles/role.h"
#include "server/session.h"

namespace jead {

// Exit statuses jead reports for commands and sessions that it ends itself.
// 70 and 77 are EX_SOFTWARE and EX_NOPERM of sysexits.h; 124 is what
// timeout(1) uses.
constexpr int kExitInternal = 70;
constexpr int kExitDenied = 77;
constexpr int kExitExpired = 78;
constexpr int kExitRevoked = 79;
constexpr int kExitIdle = 80;
constexpr int kExitShutdown = 81;
constexpr int kExitTimedOut = 124;
constexpr int kExitOutputLimit = 125;
constexpr int kExitStartFailed = 127;

std::int64_t unix_now();

// "1h12m", "52m", "40s".
std::string format_time_left(std::int64_t seconds);

// Writes `data` to the client: as stdout or stderr on an exec or plain
// shell channel, and with LF turned into CR LF on a pty channel, where
// stdout and stderr share the terminal.
void write_to_client(CommandChannel& channel, std::string_view data, bool is_stderr);

// Writes a verb's pseudo-terminal output to the client unchanged: the
// terminal's own output processing has already turned LF into CR LF.
void write_terminal_output(CommandChannel& channel, std::string_view data);

// Sends `data` as far as the channel's window allows and keeps the rest in
// the channel's outbox, so nothing is lost to a partial write.
void send_to_client(CommandChannel& channel, std::string_view data, bool is_stderr);
// Writes what the outbox holds; returns true when it is empty.
bool flush_outbox(CommandChannel& channel);

// Writes "jead: MESSAGE" as one line on stderr (or the terminal).
void tell_client(CommandChannel& channel, const std::string& message);

// The subsystem's framing: "jea-stdout N" or "jea-stderr N", a newline,
// then N bytes.
void write_subsystem_frame(CommandChannel& channel, std::string_view data, bool is_stderr);

// Logs a session event at info level, or at warning level with the tag
// "break-glass" when the session's role is a break-glass role.
template <class... Args>
void log_session_event(bool break_glass, fmt::format_string<Args...> format, Args&&... args)
{
	if (break_glass)
		spdlog::warn("break-glass {}", fmt::format(format, std::forward<Args>(args)...));
	else
		spdlog::info(format, std::forward<Args>(args)...);
}

// Records a transcript failure and logs it; the caller decides what stops.
void note_transcript_failure(CommandChannel& channel, const Error& error);

// Shell texts generated from the role.
std::string shell_banner(const Role& role, std::int64_t seconds_left);
std::string shell_prompt(const Role& role, std::int64_t seconds_left);
// Whether the session's certificate lets it run a verb (jead-verbs@jead),
// so that help and completion offer only those.
using VerbFilter = std::function<bool(std::string_view verb)>;
// Lists the role's verbs that `shown` accepts and the built-ins; `exit`
// only in a shell.
std::string help_text(const Role& role, bool in_shell, const VerbFilter& shown);
std::string verb_help_text(const Verb& verb);
std::vector<std::string> complete_words(const Role& role, std::string_view line_before_cursor, const VerbFilter& shown);

// Turns a JSON array of strings into a command line that tokenizes back
// into exactly those words (each single-quoted).
Result<std::string> json_words_to_line(std::string_view json, std::size_t max_words);

}  // namespace jead
