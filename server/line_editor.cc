#include "server/line_editor.h"

#include <algorithm>

namespace jead {

namespace {

constexpr unsigned char kCtrlA = 0x01;
constexpr unsigned char kCtrlB = 0x02;
constexpr unsigned char kCtrlC = 0x03;
constexpr unsigned char kCtrlD = 0x04;
constexpr unsigned char kCtrlE = 0x05;
constexpr unsigned char kCtrlF = 0x06;
constexpr unsigned char kBackspaceCtrlH = 0x08;
constexpr unsigned char kTab = 0x09;
constexpr unsigned char kLineFeed = 0x0A;
constexpr unsigned char kCtrlK = 0x0B;
constexpr unsigned char kCtrlL = 0x0C;
constexpr unsigned char kCarriageReturn = 0x0D;
constexpr unsigned char kCtrlN = 0x0E;
constexpr unsigned char kCtrlP = 0x10;
constexpr unsigned char kCtrlU = 0x15;
constexpr unsigned char kCtrlW = 0x17;
constexpr unsigned char kEscape = 0x1B;
constexpr unsigned char kDelete = 0x7F;
// Longest CSI parameter string kept; longer sequences are dropped whole.
constexpr std::size_t kMaxCsiParams = 16;

bool is_continuation(unsigned char byte)
{
	return (byte & 0xC0) == 0x80;
}

std::string common_prefix(const std::vector<std::string>& words)
{
	if (words.empty())
		return {};
	std::string prefix = words.front();
	for (const auto& word : words) {
		std::size_t n = 0;
		while (n < prefix.size() && n < word.size() && prefix[n] == word[n])
			++n;
		prefix.resize(n);
	}
	return prefix;
}

}  // namespace

LineEditor::LineEditor(std::size_t max_line_bytes, std::size_t max_history)
	: max_line_bytes_(max_line_bytes), max_history_(max_history)
{
}

std::size_t LineEditor::previous_char(std::size_t pos) const
{
	while (pos > 0) {
		--pos;
		if (!is_continuation(static_cast<unsigned char>(line_[pos])))
			break;
	}
	return pos;
}

std::size_t LineEditor::next_char(std::size_t pos) const
{
	if (pos >= line_.size())
		return line_.size();
	++pos;
	while (pos < line_.size() && is_continuation(static_cast<unsigned char>(line_[pos])))
		++pos;
	return pos;
}

void LineEditor::redraw(std::string& screen) const
{
	// Carriage return, prompt, line, clear to the end, then move the
	// cursor back over the characters after it.
	screen += '\r';
	screen += prompt_;
	screen += line_;
	screen += "\x1b[K";
	std::size_t after = 0;
	for (std::size_t i = cursor_; i < line_.size(); ++i)
		after += is_continuation(static_cast<unsigned char>(line_[i])) ? 0 : 1;
	if (after > 0)
		screen += "\x1b[" + std::to_string(after) + "D";
}

void LineEditor::feed(std::string_view bytes, std::string& screen, std::vector<Event>& events)
{
	for (char c : bytes)
		handle_byte(static_cast<unsigned char>(c), screen, events);
}

void LineEditor::handle_byte(unsigned char byte, std::string& screen, std::vector<Event>& events)
{
	// Escape sequences: ESC [ params final, or ESC O final.
	if (escape_ == EscapeState::escape) {
		if (byte == '[')
			escape_ = EscapeState::csi;
		else if (byte == 'O')
			escape_ = EscapeState::ss3;
		else
			escape_ = EscapeState::none;
		csi_params_.clear();
		return;
	}
	if (escape_ == EscapeState::csi) {
		if (byte >= 0x40 && byte <= 0x7E) {
			escape_ = EscapeState::none;
			if (csi_params_.size() <= kMaxCsiParams)
				handle_csi(static_cast<char>(byte), screen);
		} else if (csi_params_.size() <= kMaxCsiParams) {
			csi_params_ += static_cast<char>(byte);
		}
		return;
	}
	if (escape_ == EscapeState::ss3) {
		escape_ = EscapeState::none;
		csi_params_.clear();
		handle_csi(static_cast<char>(byte), screen);
		return;
	}

	// A terminal sends CR for Enter; CR LF (or a lone LF) counts once.
	const bool was_cr = last_was_cr_;
	last_was_cr_ = byte == kCarriageReturn;
	if (byte == kLineFeed && was_cr)
		return;

	switch (byte) {
	case kCarriageReturn:
	case kLineFeed:
		submit(screen, events);
		return;
	case kEscape:
		escape_ = EscapeState::escape;
		return;
	case kCtrlC:
		screen += "^C\r\n";
		line_.clear();
		cursor_ = 0;
		history_index_ = history_.size();
		overflow_reported_ = false;
		events.push_back({Event::Kind::interrupt, {}});
		return;
	case kCtrlD:
		if (line_.empty()) {
			screen += "\r\n";
			events.push_back({Event::Kind::end_of_input, {}});
		} else if (cursor_ < line_.size()) {
			line_.erase(cursor_, next_char(cursor_) - cursor_);
			redraw(screen);
		}
		return;
	case kCtrlA:
		cursor_ = 0;
		redraw(screen);
		return;
	case kCtrlE:
		cursor_ = line_.size();
		redraw(screen);
		return;
	case kCtrlB:
		cursor_ = previous_char(cursor_);
		redraw(screen);
		return;
	case kCtrlF:
		cursor_ = next_char(cursor_);
		redraw(screen);
		return;
	case kCtrlK:
		line_.erase(cursor_);
		redraw(screen);
		return;
	case kCtrlU:
		line_.erase(0, cursor_);
		cursor_ = 0;
		redraw(screen);
		return;
	case kCtrlW: {
		std::size_t start = cursor_;
		while (start > 0 && line_[start - 1] == ' ')
			--start;
		while (start > 0 && line_[start - 1] != ' ')
			--start;
		line_.erase(start, cursor_ - start);
		cursor_ = start;
		redraw(screen);
		return;
	}
	case kCtrlL:
		screen += "\x1b[H\x1b[2J";
		redraw(screen);
		return;
	case kCtrlP:
		history_step(-1, screen);
		return;
	case kCtrlN:
		history_step(+1, screen);
		return;
	case kTab:
		complete(screen);
		return;
	case kDelete:
	case kBackspaceCtrlH:
		if (cursor_ > 0) {
			const std::size_t start = previous_char(cursor_);
			line_.erase(start, cursor_ - start);
			cursor_ = start;
			redraw(screen);
		}
		return;
	default:
		break;
	}

	// Other control bytes are not part of any command line: drop them.
	if (byte < 0x20)
		return;
	insert(byte, screen);
}

void LineEditor::handle_csi(char final_byte, std::string& screen)
{
	switch (final_byte) {
	case 'A': history_step(-1, screen); break;
	case 'B': history_step(+1, screen); break;
	case 'C': cursor_ = next_char(cursor_); redraw(screen); break;
	case 'D': cursor_ = previous_char(cursor_); redraw(screen); break;
	case 'H': cursor_ = 0; redraw(screen); break;
	case 'F': cursor_ = line_.size(); redraw(screen); break;
	case '~':
		if (csi_params_ == "1" || csi_params_ == "7") {
			cursor_ = 0;
		} else if (csi_params_ == "4" || csi_params_ == "8") {
			cursor_ = line_.size();
		} else if (csi_params_ == "3" && cursor_ < line_.size()) {
			line_.erase(cursor_, next_char(cursor_) - cursor_);
		}
		redraw(screen);
		break;
	default:
		break;   // other keys (function keys, mouse reports) do nothing
	}
}

void LineEditor::insert(unsigned char byte, std::string& screen)
{
	// Once bytes were dropped, the line is no longer what was typed and is
	// denied on Enter; clearing it all starts afresh.
	if (line_.empty())
		overflow_reported_ = false;
	if (line_.size() >= max_line_bytes_) {
		if (!overflow_reported_) {
			overflow_reported_ = true;
			screen += "\r\njead: the line is longer than " + std::to_string(max_line_bytes_) +
			          " bytes (max_command_length), so Enter denies it; Ctrl-C clears it\r\n";
			redraw(screen);
		}
		return;
	}
	line_.insert(line_.begin() + static_cast<std::ptrdiff_t>(cursor_), static_cast<char>(byte));
	++cursor_;
	// A UTF-8 continuation byte finishes a character the terminal shows as
	// one; echo the plain append case directly, redraw otherwise.
	if (cursor_ == line_.size())
		screen += static_cast<char>(byte);
	else if (!is_continuation(byte))
		redraw(screen);
}

void LineEditor::submit(std::string& screen, std::vector<Event>& events)
{
	screen += "\r\n";
	std::string line = std::move(line_);
	line_.clear();
	cursor_ = 0;
	const bool overflowed = overflow_reported_;
	overflow_reported_ = false;
	if (!overflowed && !line.empty() && (history_.empty() || history_.back() != line)) {
		history_.push_back(line);
		if (history_.size() > max_history_)
			history_.erase(history_.begin());
	}
	history_index_ = history_.size();
	draft_.clear();
	events.push_back({Event::Kind::line, std::move(line), overflowed});
}

void LineEditor::set_line(std::string text, std::string& screen)
{
	line_ = std::move(text);
	cursor_ = line_.size();
	redraw(screen);
}

void LineEditor::history_step(int direction, std::string& screen)
{
	if (direction < 0) {
		if (history_index_ == 0)
			return;
		if (history_index_ == history_.size())
			draft_ = line_;
		--history_index_;
		set_line(history_[history_index_], screen);
		return;
	}
	if (history_index_ >= history_.size())
		return;
	++history_index_;
	set_line(history_index_ == history_.size() ? draft_ : history_[history_index_], screen);
}

void LineEditor::complete(std::string& screen)
{
	if (!completer_)
		return;
	const std::string before = line_.substr(0, cursor_);
	const auto candidates = completer_(before);
	if (candidates.empty())
		return;

	const std::size_t word_start = before.find_last_of(' ') == std::string::npos ? 0 : before.find_last_of(' ') + 1;
	const std::string typed = before.substr(word_start);
	std::string prefix = common_prefix(candidates);
	if (candidates.size() == 1)
		prefix += ' ';

	if (prefix.size() > typed.size() && prefix.compare(0, typed.size(), typed) == 0) {
		const std::string added = prefix.substr(typed.size());
		if (line_.size() + added.size() <= max_line_bytes_) {
			line_.insert(cursor_, added);
			cursor_ += added.size();
		}
		redraw(screen);
		return;
	}
	if (candidates.size() > 1) {
		screen += "\r\n";
		for (std::size_t i = 0; i < candidates.size(); ++i)
			screen += (i ? "  " : "") + candidates[i];
		screen += "\r\n";
		redraw(screen);
	}
}

}  // namespace jead
