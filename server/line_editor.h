// The interactive role shell's line editor: turns the keystrokes of a
// client terminal (in raw mode behind a pty request) into edited lines and
// the bytes that redraw them. It does no I/O, so it is tested byte by byte.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace jead {

class LineEditor {
public:
	struct Event {
		enum class Kind { line, end_of_input, interrupt };
		Kind kind = Kind::line;
		std::string line;   // for Kind::line
		bool overflowed = false;   // bytes past the length limit were dropped, so the line must be denied
	};

	// Returns the candidates that could replace the word before the cursor;
	// the editor completes their common prefix and lists them when several.
	using Completer = std::function<std::vector<std::string>(std::string_view line_before_cursor)>;

	explicit LineEditor(std::size_t max_line_bytes = 8192, std::size_t max_history = 100);

	void set_prompt(std::string prompt) { prompt_ = std::move(prompt); }
	void set_completer(Completer completer) { completer_ = std::move(completer); }

	// Feeds keystrokes. Appends what the terminal must show to `screen` and
	// the finished lines, interrupts and end of input to `events`.
	void feed(std::string_view bytes, std::string& screen, std::vector<Event>& events);

	// Appends the prompt and the current line, cursor in place, to `screen`.
	void redraw(std::string& screen) const;

	const std::string& line() const { return line_; }
	std::size_t cursor() const { return cursor_; }

private:
	enum class EscapeState { none, escape, csi, ss3 };

	void handle_byte(unsigned char byte, std::string& screen, std::vector<Event>& events);
	void handle_csi(char final_byte, std::string& screen);
	void submit(std::string& screen, std::vector<Event>& events);
	void insert(unsigned char byte, std::string& screen);
	void complete(std::string& screen);
	void history_step(int direction, std::string& screen);
	void set_line(std::string text, std::string& screen);
	std::size_t previous_char(std::size_t pos) const;
	std::size_t next_char(std::size_t pos) const;

	std::string prompt_;
	std::string line_;
	std::size_t cursor_ = 0;
	std::size_t max_line_bytes_;
	bool overflow_reported_ = false;

	std::vector<std::string> history_;
	std::size_t max_history_;
	std::size_t history_index_ = 0;   // == history_.size() when editing a new line
	std::string draft_;               // the new line, kept while browsing history

	EscapeState escape_ = EscapeState::none;
	std::string csi_params_;
	bool last_was_cr_ = false;
	Completer completer_;
};

}  // namespace jead
