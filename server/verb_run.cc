// Running one verb for a channel: the write-ahead decision record, the
// spawn, relaying output with back-pressure from the SSH window, stdin,
// timeouts and the exit record.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/server.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>

#include "common/duration.h"
#include "common/escape.h"
#include "roles/policy.h"
#include "server/session_internal.h"

namespace jead {

namespace {

// Bytes read from a verb's pipe (or the client's stdin data) per wake-up.
// With 32 KiB, streaming 256 MiB of zeros cost jead 1.49 s of CPU, most
// of it in wake-ups and context switches. With 256 KiB reads from a
// 256 KiB pipe it cost 1.0 s (bench/run's setup on a 2-core machine).
constexpr std::size_t kReadChunk = 256 * 1024;
constexpr auto kKillGrace = std::chrono::seconds(5);

// One read buffer for the whole event loop, so reading a verb's pipes
// allocates nothing.
std::array<char, kReadChunk> g_read_buffer;

const char* signal_name(int sig)
{
	switch (sig) {
	case SIGABRT: return "ABRT";
	case SIGALRM: return "ALRM";
	case SIGFPE: return "FPE";
	case SIGHUP: return "HUP";
	case SIGILL: return "ILL";
	case SIGINT: return "INT";
	case SIGKILL: return "KILL";
	case SIGPIPE: return "PIPE";
	case SIGQUIT: return "QUIT";
	case SIGSEGV: return "SEGV";
	case SIGTERM: return "TERM";
	case SIGUSR1: return "USR1";
	case SIGUSR2: return "USR2";
	default: return "KILL";
	}
}

void relay_output(CommandChannel& channel, VerbRun::Stream stream)
{
	VerbRun& run = *channel.run;
	const bool is_stderr = stream == VerbRun::Stream::stderr_;
	bool& open = is_stderr ? run.stderr_open : run.stdout_open;
	const int fd = is_stderr ? run.process.stderr_fd.get() : run.process.stdout_fd.get();
	if (!open || fd < 0)
		return;

	std::size_t want = kReadChunk;
	if (channel.channel && !flush_outbox(channel)) {
		run.paused = true;
		return;
	}
	if (channel.channel) {
		// Read no more than the client's window takes, so a client that
		// stops reading stops the program's pipe, not jead's memory. A pty
		// may double the bytes (LF to CR LF) unless the program has a
		// terminal of its own; framing adds a header.
		std::size_t window = ssh_channel_window_size(channel.channel);
		if (channel.pty && !run.terminal)
			window /= 2;
		if (channel.mode == CommandChannel::Mode::subsystem)
			window = window > 64 ? window - 64 : 0;
		if (window == 0) {
			run.paused = true;
			return;
		}
		want = std::min(want, window);
	}

	// Read at most one byte past the verb's max_output: that byte shows the
	// limit was crossed, and it is neither sent nor recorded.
	const std::uint64_t allowance = run.max_output_bytes >= run.bytes_out ? run.max_output_bytes - run.bytes_out + 1 : 1;
	want = static_cast<std::size_t>(std::min<std::uint64_t>(want, allowance));
	const ssize_t n = ::read(fd, g_read_buffer.data(), want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	// A terminal's master reads EIO, not 0, once every process has closed
	// the slave: the normal end of its output.
	if (n <= 0) {
		open = false;
		return;
	}

	std::string_view data(g_read_buffer.data(), static_cast<std::size_t>(n));
	run.bytes_out += data.size();
	if (run.bytes_out > run.max_output_bytes) {
		data.remove_suffix(static_cast<std::size_t>(run.bytes_out - run.max_output_bytes));
		if (!run.term_sent) {
			run.stop_note = "output exceeded the verb's limit of " + std::to_string(run.max_output_bytes) +
			                " bytes, so the program was stopped";
			run.stop_exit_status = kExitOutputLimit;
			run.term_sent = true;
			run.term_sent_at = std::chrono::steady_clock::now();
			::kill(-run.process.pid, SIGTERM);
		}
		open = false;   // nothing more is read from this pipe
	}
	run.last_output_at = std::chrono::steady_clock::now();
	if (channel.transcript && !channel.transcript_failed) {
		const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
		if (auto r = channel.transcript->output(is_stderr ? OutputStream::stderr_ : OutputStream::stdout_, bytes); !r)
			note_transcript_failure(channel, r.error());
	}
	if (channel.mode == CommandChannel::Mode::subsystem)
		write_subsystem_frame(channel, data, is_stderr);
	else if (run.terminal)
		write_terminal_output(channel, data);
	else
		write_to_client(channel, data, is_stderr);
}

int on_output_ready(socket_t, int, void* userdata)
{
	auto& watch = *static_cast<VerbRun::FdWatch*>(userdata);
	if (watch.channel->run)
		relay_output(*watch.channel, watch.stream);
	return 0;
}

// Reaps the channel's program if it has exited.
void reap_if_exited(CommandChannel& channel)
{
	if (!channel.run || channel.run->exited)
		return;
	int status = 0;
	if (::waitpid(channel.run->process.pid, &status, WNOHANG) == channel.run->process.pid) {
		channel.run->exited = true;
		channel.run->wait_status = status;
		channel.run->exited_at = std::chrono::steady_clock::now();
	}
}

int on_process_exit(socket_t, int, void* userdata)
{
	reap_if_exited(*static_cast<CommandChannel*>(userdata));
	return 0;
}

int on_stdin_writable(socket_t, int, void*)
{
	// The loop's service step writes; this only wakes the poll.
	return 0;
}

// Closes the program's stdin, which it reads as end of file. The watch
// comes off first: left on the closed descriptor, it makes every poll
// return POLLNVAL at once, and the event loop spins at full CPU.
void close_stdin(VerbRun& run, ssh_event event)
{
	if (run.stdin_registered) {
		ssh_event_remove_fd(event, run.process.stdin_fd.get());
		run.stdin_registered = false;
	}
	run.process.stdin_fd.reset();
}

}  // namespace

void note_transcript_failure(CommandChannel& channel, const Error& error)
{
	if (channel.transcript_failed)
		return;
	channel.transcript_failed = true;
	spdlog::error("session={} transcript {}: {}", channel.session_id,
	              channel.transcript ? channel.transcript->path().string() : std::string("(none)"), error.message);
}

namespace {

// Records a command start in the channel's one-minute window; returns
// false when the window is full.
bool take_command_slot(CommandChannel& channel)
{
	const auto now = std::chrono::steady_clock::now();
	auto& starts = channel.command_starts;
	while (!starts.empty() && now - starts.front() > std::chrono::minutes(1))
		starts.pop_front();
	if (static_cast<int>(starts.size()) >= channel.policy->config.max_commands_per_minute)
		return false;
	starts.push_back(now);
	return true;
}

}  // namespace

void SessionRunner::start_verb(CommandChannel& channel, const std::string& line, ssh_event event)
{
	Connection& connection = *channel.connection;
	const auto& cert = connection.grant->certificate;
	// Each command is decided by the policy in force now: a reload on
	// SIGHUP applies to the next command of every live session.
	channel.policy = policy_;
	const std::string& role_name = connection.grant->role->name;
	const Role* current_role = policy_->find_role(role_name);
	const Role& role = current_role ? *current_role : *connection.grant->role;

	Decision decision;
	const auto max_length = channel.policy->config.max_command_length;
	if (!current_role) {
		decision.reason = "denied: role \"" + role_name + "\" is no longer in the policy";
	} else if (!principals_granted_role(policy_->config, role_name, cert.principals)) {
		decision.reason = "denied: no principal of this certificate is granted role \"" + role_name +
		                  "\" any more";
	} else if (!take_command_slot(channel)) {
		decision.reason = "denied: more than " + std::to_string(policy_->config.max_commands_per_minute) +
		                  " commands in the last minute (max_commands_per_minute); wait and retry";
	} else if (line.size() > max_length && channel.mode == CommandChannel::Mode::exec) {
		decision.reason = "denied: the command line is " + std::to_string(line.size()) + " bytes; the limit is " +
		                  std::to_string(max_length) + " (max_command_length)";
	} else if (line.size() > max_length) {
		// A shell or the subsystem keeps only the first max_length + 1
		// bytes of a long line, so its full length is not known.
		decision.reason = "denied: the command line is longer than " + std::to_string(max_length) +
		                  " bytes (max_command_length)";
	} else if (auto revoked = revocation_.check(cert); !revoked) {
		decision.reason = "denied: " + revoked.error().message;
	} else if (const CertOption* forced = find_critical_option(cert, "force-command");
	           forced && forced->data != line) {
		decision.reason = "denied: this certificate allows only the command " + escape_untrusted(forced->data) +
		                  " (force-command)";
	} else {
		decision = decide(role, line);
		if (decision.allowed && decision.verb_spec->reads_stdin && channel.mode != CommandChannel::Mode::exec) {
			decision.allowed = false;
			decision.reason = "denied: verb \"" + decision.verb +
			                  "\" reads standard input, so it runs only as its own command: ssh " + role.name +
			                  "@HOST " + decision.verb + " ARGS < FILE";
		}
		if (decision.allowed && !allowed_by_certificate_verbs(cert, decision.verb)) {
			decision.allowed = false;
			decision.reason = "denied: this certificate's jead-verbs@jead extension does not list verb \"" +
			                  decision.verb + "\"";
		}
		if (decision.allowed) {
			if (auto limited = verb_limit_denial(connection, role, *decision.verb_spec)) {
				decision.allowed = false;
				decision.reason = "denied: " + *limited;
			}
		}
	}

	DecisionRecord record;
	record.allowed = decision.allowed;
	record.reason = decision.reason;
	record.verb = decision.verb;
	record.arguments = decision.arguments;
	record.argv = decision.argv;
	record.policy_version = channel.policy->version;

	RunAs run_as;
	if (decision.allowed) {
		const auto& user = decision.verb_spec->run_as_user ? decision.verb_spec->run_as_user : role.run_as_user;
		auto resolved = resolve_run_as(user, role.run_as_group);
		if (resolved) {
			run_as = *resolved;
			record.run_as = run_as.user;
		} else {
			record.allowed = false;
			record.reason = "denied: " + resolved.error().message;
		}
	}

	// The write-ahead record: on disk before anything starts.
	if (auto r = channel.transcript->decision(record); !r) {
		note_transcript_failure(channel, r.error());
		after_command(channel, kExitInternal, "cannot record this command, so it does not run: " + r.error().message);
		return;
	}

	if (!record.allowed) {
		log_session_event(channel.break_glass, "session={} role={} denied {}: {}", channel.session_id, role.name,
		                  escape_untrusted(line), record.reason);
		after_command(channel, kExitDenied, record.reason);
		return;
	}

	// How much of the streams the transcript keeps, announced before the
	// program starts; a failure here also keeps the program from starting.
	const auto recording = [](RecordMode mode, const Verb& verb) {
		StreamRecording r;
		r.mode = mode == RecordMode::digest      ? StreamRecording::Mode::digest
		         : mode == RecordMode::head_tail ? StreamRecording::Mode::head_tail
		                                         : StreamRecording::Mode::full;
		r.head_bytes = verb.record_head_bytes;
		r.tail_bytes = verb.record_tail_bytes;
		return r;
	};
	const Verb& verb = *decision.verb_spec;
	if (auto r = channel.transcript->begin_command(recording(verb.record_output, verb),
	                                               recording(verb.record_stdin, verb));
	    !r) {
		note_transcript_failure(channel, r.error());
		after_command(channel, kExitInternal, "cannot record this command, so it does not run: " + r.error().message);
		return;
	}

	// An interactive verb gets a terminal only when the client has one, and
	// the subsystem's framing has no room for a terminal's raw stream.
	const bool on_terminal = verb.interactive && channel.pty && channel.mode != CommandChannel::Mode::subsystem;

	SpawnRequest request;
	request.argv = decision.argv;
	request.environment = base_environment();
	// The client's TERM replaces TERM=dumb. The role's environment comes
	// after it and so still wins.
	if (on_terminal && !channel.term.empty())
		request.environment.push_back("TERM=" + channel.term);
	for (const auto& [name, value] : role.environment)
		request.environment.push_back(name + "=" + value);
	request.working_directory = role.working_directory;
	request.run_as = run_as;
	request.limits = role.limits;
	request.stdin_pipe = decision.verb_spec->reads_stdin;
	if (on_terminal)
		request.terminal = TerminalSize{channel.columns, channel.rows};
	auto descriptors = path_descriptors(decision);
	if (descriptors)
		request.path_descriptors = std::move(*descriptors);
	auto process = descriptors ? spawn_process(request) : Result<SpawnedProcess>(tl::unexpected(descriptors.error()));
	if (!process) {
		spdlog::error("session={} role={} verb={} failed to start: {}", channel.session_id, role.name, decision.verb,
		              process.error().message);
		if (auto r = channel.transcript->process_exit(kExitStartFailed, 0, std::chrono::milliseconds(0), 0,
		                                              process.error().message);
		    !r)
			note_transcript_failure(channel, r.error());
		after_command(channel, kExitStartFailed, "verb \"" + decision.verb + "\" failed to start: " +
		                                             process.error().message);
		return;
	}

	auto run = std::make_unique<VerbRun>();
	run->process = std::move(*process);
	run->verb = decision.verb;
	run->concurrency_key = role.name + " " + decision.verb;
	++running_per_verb_[run->concurrency_key];
	run->terminal = on_terminal;
	run->record_keystrokes = verb.record_keystrokes;
	run->stderr_open = !on_terminal;   // a terminal has one output stream
	run->stdout_watch = {&channel, VerbRun::Stream::stdout_};
	run->stderr_watch = {&channel, VerbRun::Stream::stderr_};
	run->started_at = std::chrono::steady_clock::now();
	run->timeout = decision.verb_spec->timeout;
	run->max_output_bytes = decision.verb_spec->max_output_bytes;
	channel.run = std::move(run);
	++channel.commands_run;

	if (auto r = channel.transcript->process_start(channel.run->process.pid); !r) {
		note_transcript_failure(channel, r.error());
		stop_verb(channel, "recording the program's start failed, so it was stopped", kExitInternal);
	} else if (on_terminal && !verb.record_keystrokes) {
		if (auto w = channel.transcript->warning("the client's keystrokes for this verb are not recorded "
		                                         "(record_keystrokes = false in the role)");
		    !w) {
			note_transcript_failure(channel, w.error());
			stop_verb(channel, "recording the program's start failed, so it was stopped", kExitInternal);
		}
	}
	log_session_event(channel.break_glass, "session={} role={} allowed {} as {}: pid {}{}", channel.session_id,
	                  role.name, escape_untrusted(line), run_as.user, channel.run->process.pid,
	                  on_terminal ? " on a pseudo-terminal" : "");
	sync_watches(channel, event);
}

// Checks the verb's max_concurrent (programs running on this host) and
// max_per_hour (starts per principal); a start that passes is counted.
std::optional<std::string> SessionRunner::verb_limit_denial(const Connection& connection, const Role& role,
                                                            const Verb& verb)
{
	const std::string key = role.name + " " + verb.name;
	if (verb.max_concurrent > 0) {
		const auto it = running_per_verb_.find(key);
		const std::uint32_t running = it == running_per_verb_.end() ? 0 : it->second;
		if (running >= verb.max_concurrent)
			return "verb \"" + verb.name + "\" is already running " + std::to_string(running) +
			       " time(s) on this host (max_concurrent " + std::to_string(verb.max_concurrent) +
			       "); retry when it has finished";
	}
	if (verb.max_per_hour > 0) {
		// The rate is counted for the first certificate principal that the
		// role is granted to, the identity the grant was made for.
		std::string principal;
		for (const auto& candidate : connection.grant->certificate.principals) {
			if (principals_granted_role(policy_->config, role.name, {candidate})) {
				principal = candidate;
				break;
			}
		}
		auto& starts = starts_per_principal_[key + " " + principal];
		const auto now = std::chrono::steady_clock::now();
		while (!starts.empty() && now - starts.front() > std::chrono::hours(1))
			starts.pop_front();
		if (starts.size() >= verb.max_per_hour)
			return "verb \"" + verb.name + "\" was started " + std::to_string(starts.size()) + " times by principal " +
			       escape_untrusted(principal, 64) + " in the last hour (max_per_hour " +
			       std::to_string(verb.max_per_hour) + ")";
		starts.push_back(now);
	}
	return std::nullopt;
}

void SessionRunner::stop_verb(CommandChannel& channel, std::string note, int exit_status)
{
	VerbRun& run = *channel.run;
	if (run.term_sent)
		return;
	run.stop_note = std::move(note);
	run.stop_exit_status = exit_status;
	run.term_sent = true;
	run.term_sent_at = std::chrono::steady_clock::now();
	::kill(-run.process.pid, SIGTERM);
}

void SessionRunner::sync_watches(CommandChannel& channel, ssh_event event)
{
	if (!channel.run)
		return;
	VerbRun& run = *channel.run;
	const auto sync = [&](int fd, short events, bool wanted, bool& registered, ssh_event_callback callback,
	                      void* userdata) {
		if (fd < 0 || wanted == registered)
			return;
		if (wanted)
			ssh_event_add_fd(event, fd, events, callback, userdata);
		else
			ssh_event_remove_fd(event, fd);
		registered = wanted;
	};
	const bool live = channel.state == CommandChannel::State::active && !run.exited;
	const bool relay = channel.state == CommandChannel::State::active && !run.paused;
	sync(run.process.stdout_fd.get(), POLLIN, relay && run.stdout_open, run.stdout_registered, on_output_ready,
	     &run.stdout_watch);
	sync(run.process.stderr_fd.get(), POLLIN, relay && run.stderr_open, run.stderr_registered, on_output_ready,
	     &run.stderr_watch);
	sync(run.process.pidfd.get(), POLLIN, live, run.pidfd_registered, on_process_exit, &channel);
	const bool stdin_waiting = run.stdin_offset < run.stdin_pending.size();
	sync(run.process.stdin_fd.get(), POLLOUT, live && stdin_waiting, run.stdin_registered, on_stdin_writable,
	     nullptr);
}

void SessionRunner::feed_stdin(CommandChannel& channel, ssh_event event)
{
	VerbRun& run = *channel.run;
	if (!run.process.stdin_fd)
		return;

	// Write what is pending; read more from the channel only when the pipe
	// took it all, so the SSH window closes when the program stops reading.
	for (int round = 0; round < 8; ++round) {
		if (run.stdin_offset < run.stdin_pending.size()) {
			const ssize_t n = ::write(run.process.stdin_fd.get(), run.stdin_pending.data() + run.stdin_offset,
			                          run.stdin_pending.size() - run.stdin_offset);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0) {
				// The program closed its stdin: drop the rest of the input.
				close_stdin(run, event);
				return;
			}
			run.stdin_offset += static_cast<std::size_t>(n);
			if (run.stdin_offset < run.stdin_pending.size())
				return;
		}
		run.stdin_pending.clear();
		run.stdin_offset = 0;
		if (!channel.channel)
			return;

		const int n = ssh_channel_read_nonblocking(channel.channel, g_read_buffer.data(), kReadChunk, 0);
		if (n > 0) {
			run.stdin_pending.assign(g_read_buffer.data(), static_cast<std::size_t>(n));
			run.bytes_in += static_cast<std::uint64_t>(n);
			// Recorded before the program can read it. On a terminal these
			// are keystrokes: the terminal echoes and edits them before the
			// program reads anything.
			const bool recorded = !run.terminal || run.record_keystrokes;
			if (recorded && channel.transcript && !channel.transcript_failed) {
				const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(run.stdin_pending.data()),
				                             run.stdin_pending.size());
				auto r = run.terminal ? channel.transcript->keystrokes(run.stdin_pending)
				                      : channel.transcript->stdin_data(bytes);
				if (!r) {
					note_transcript_failure(channel, r.error());
					run.stdin_pending.clear();
					close_stdin(run, event);
					return;
				}
			}
			continue;
		}
		if (n == SSH_EOF || ssh_channel_is_eof(channel.channel)) {
			if (ssh_channel_poll(channel.channel, 0) <= 0) {
				close_stdin(run, event);
				return;
			}
			continue;
		}
		return;
	}
}

void SessionRunner::finish_run(CommandChannel& channel, ssh_event event)
{
	VerbRun& run = *channel.run;
	const bool was_active = channel.state == CommandChannel::State::active;
	channel.state = CommandChannel::State::finished;   // makes sync_watches remove every watch
	sync_watches(channel, event);
	if (was_active)
		channel.state = CommandChannel::State::active;

	const int status = run.wait_status;
	const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	const int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(run.exited_at - run.started_at);
	if (channel.transcript && !channel.transcript_failed) {
		if (auto r = channel.transcript->process_exit(signal ? 0 : exit_status, signal, duration, run.bytes_out,
		                                              run.stop_note);
		    !r)
			note_transcript_failure(channel, r.error());
	}
	spdlog::info("session={} pid {} ended: {} {} after {} ms, {} bytes out, {} bytes in{}", channel.session_id,
	             run.process.pid, signal ? "signal" : "exit status", signal ? signal : exit_status, duration.count(),
	             run.bytes_out, run.bytes_in, run.stop_note.empty() ? "" : "; " + run.stop_note);

	const std::string note = run.stop_note;
	const int reported = note.empty() ? exit_status : run.stop_exit_status;
	const bool exec_signal = signal && note.empty() && channel.mode == CommandChannel::Mode::exec && channel.channel;
	if (auto it = running_per_verb_.find(run.concurrency_key); it != running_per_verb_.end() && --it->second == 0)
		running_per_verb_.erase(it);
	channel.run.reset();

	if (exec_signal && !channel.ending) {
		// An exec client gets the signal itself, as from sshd.
		ssh_channel_request_send_exit_signal(channel.channel, signal_name(signal), WCOREDUMP(status) ? 1 : 0, "", "");
		channel.last_exit_status = reported;
		channel.ending = ChannelEnding{"exit", "", reported, true};
		return;
	}
	after_command(channel, reported, note);
}

void SessionRunner::check_time_and_revocation(CommandChannel& channel)
{
	if (channel.ending || !channel.connection)
		return;
	Connection& connection = *channel.connection;
	const auto& cert = connection.grant->certificate;
	const std::int64_t now = unix_now();
	const std::int64_t left = static_cast<std::int64_t>(cert.valid_before) - now;

	if (left <= 0) {
		channel.ending = ChannelEnding{"expired",
		                               "the certificate expired at " + format_utc(cert.valid_before) +
		                                   "; the session is over. Get a new certificate.",
		                               kExitExpired};
	} else if (auto revoked = revocation_.check(cert, RevocationWatch::Freshness::recent); !revoked) {
		channel.ending = ChannelEnding{"revoked", revoked.error().message + "; the session is over", kExitRevoked};
	} else if (!channel.expiry_warned && channel.mode != CommandChannel::Mode::exec &&
	           left <= channel.policy->config.expiry_warning.count()) {
		channel.expiry_warned = true;
		tell_client(channel, "the certificate expires in " + format_time_left(left) + "; the session ends then");
		channel.prompt_shown = false;
		if (channel.transcript && !channel.transcript_failed) {
			if (auto r = channel.transcript->warning("certificate expires in " + std::to_string(left) + " s"); !r)
				note_transcript_failure(channel, r.error());
		}
		return;
	} else {
		return;
	}

	spdlog::warn("session={} ending: {}", channel.session_id, channel.ending->message);
	if (channel.run)
		stop_verb(channel, channel.ending->message, channel.ending->exit_status);
}

void SessionRunner::service_channel(CommandChannel& channel, ssh_event event)
{
	if (channel.state == CommandChannel::State::finished)
		return;
	if (channel.state == CommandChannel::State::open) {
		if (channel.mode != CommandChannel::Mode::none && channel.connection)
			begin_channel(channel);
		return;
	}

	// Expiry and revocation are checked twice a second per channel, not at
	// every wakeup of the loop, which may come per packet.
	const auto now = std::chrono::steady_clock::now();
	if (channel.connection && now >= channel.next_time_check) {
		channel.next_time_check = now + std::chrono::milliseconds(500);
		check_time_and_revocation(channel);
	}

	if (channel.run) {
		VerbRun& run = *channel.run;
		// Without a pidfd the exit is found here, at each wakeup of the
		// loop, which comes at least every 200 ms.
		if (!run.process.pidfd)
			reap_if_exited(channel);
		if (run.paused && (!channel.channel || (flush_outbox(channel) && ssh_channel_window_size(channel.channel) > 0)))
			run.paused = false;
		if (channel.transcript_failed)
			stop_verb(channel, "recording the output failed, so the program was stopped", kExitInternal);
		if (run.bytes_out > run.max_output_bytes)
			stop_verb(channel,
			          "output exceeded the verb's limit of " + std::to_string(run.max_output_bytes) +
			              " bytes, so the program was stopped",
			          kExitOutputLimit);
		if (run.timeout.count() > 0 && now - run.started_at > run.timeout)
			stop_verb(channel, "timed out after " + std::to_string(run.timeout.count()) + " s", kExitTimedOut);
		if (run.term_sent && !run.kill_sent && now - run.term_sent_at > kKillGrace) {
			run.kill_sent = true;
			::kill(-run.process.pid, SIGKILL);
		}
		if (run.process.stdin_fd)
			feed_stdin(channel, event);

		// After the program exits its pipes are drained to the end, at the
		// client's pace. Only a pipe that stays open but idle, held by a
		// child the program left behind, ends the command after 2 s.
		const auto quiet_since = std::max(run.exited_at, run.last_output_at);
		const bool drained = !run.stdout_open && !run.stderr_open;
		const bool abandoned = !run.paused && now - quiet_since > std::chrono::seconds(2);
		if (run.exited && (drained || abandoned)) {
			finish_run(channel, event);
		} else {
			sync_watches(channel, event);
			// A terminal takes the client's bytes itself, and the line
			// editor gets them again once its input is closed.
			const bool input_to_terminal = run.terminal && run.process.stdin_fd;
			if (!input_to_terminal && (channel.pty || !run.process.stdin_fd))
				pull_input(channel);
			return;
		}
	}

	if (channel.ending || !channel.connection) {
		finish_channel(channel, event);
		return;
	}
	if (channel.pending_notification && !notification_passed(channel)) {
		if (channel.ending)
			finish_channel(channel, event);
		return;
	}

	pull_input(channel);
	while (!channel.run && !channel.ending && !channel.lines.empty()) {
		const std::string line = std::move(channel.lines.front());
		channel.lines.pop_front();
		run_line(channel, line, event);
	}
	if (channel.run || channel.ending) {
		if (channel.ending && !channel.run)
			finish_channel(channel, event);
		return;
	}

	if (channel.mode == CommandChannel::Mode::exec || channel.input_eof) {
		channel.ending = ChannelEnding{channel.client_end_reason, "", channel.last_exit_status};
		finish_channel(channel, event);
		return;
	}
	if (channel.pty && !channel.prompt_shown) {
		std::string screen = channel.output_at_line_start ? "" : "\r\n";
		channel.editor->set_prompt(shell_prompt(*channel.connection->grant->role,
		                                        static_cast<std::int64_t>(channel.connection->grant->certificate.valid_before) -
		                                            unix_now()));
		channel.editor->redraw(screen);
		write_to_client(channel, screen, false);
		channel.prompt_shown = true;
	}
	if (channel.pty && !channel.typeahead.empty()) {
		const std::string keys = std::move(channel.typeahead);
		channel.typeahead.clear();
		feed_editor(channel, keys);
		if (!channel.lines.empty() || channel.input_eof)
			return;   // the next pass runs them
	}
	if (now - channel.last_activity > channel.policy->config.idle_timeout) {
		channel.ending = ChannelEnding{"idle-timeout",
		                               "idle for " + format_time_left(channel.policy->config.idle_timeout.count()) +
		                                   " (idle_timeout); the session is over",
		                               kExitIdle};
		finish_channel(channel, event);
	}
}

}  // namespace jead
