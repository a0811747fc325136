#include "roles/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "roles/limits.h"

namespace jead {

namespace {

bool is_control_byte(char c)
{
	const auto b = static_cast<std::uint8_t>(c);
	return b < 0x20 || b == 0x7F;
}

std::string column_text(std::size_t index)
{
	return "column " + std::to_string(index + 1);
}

tl::unexpected<SyntaxError> syntax_error(Errc code, std::size_t index, std::string message)
{
	return tl::unexpected<SyntaxError>(SyntaxError{code, index + 1, std::move(message)});
}

tl::unexpected<SyntaxError> control_byte_error(std::string_view line, std::size_t index)
{
	char hex[8];
	std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<std::uint8_t>(line[index])));
	return syntax_error(Errc::invalid, index,
	                    std::string("invalid control character ") + hex + " at " + column_text(index));
}

enum class Quote { none, single, double_ };

}  // namespace

tl::expected<std::vector<Word>, SyntaxError> tokenize_words(std::string_view line)
{
	if (line.size() > limits::kMaxCommandLineBytes)
		return syntax_error(Errc::limit, limits::kMaxCommandLineBytes,
		                    "command line is " + std::to_string(line.size()) + " bytes, longer than the maximum of " +
		                        std::to_string(limits::kMaxCommandLineBytes));

	// Words are separated by at least one byte, so a line of n bytes has at
	// most n / 2 + 1 words. Reserving that up front is one allocation.
	std::vector<Word> words;
	words.reserve(std::min(limits::kMaxCommandWords, line.size() / 2 + 1));
	std::string current;
	bool in_word = false;            // true once any byte or quote of a word was seen
	Quote quote = Quote::none;
	std::size_t quote_start = 0;

	std::size_t word_start = 0;
	const auto finish_word = [&]() {
		words.push_back(Word{std::move(current), word_start + 1});
		current.clear();
		in_word = false;
	};

	// One pass over the line; `i` only grows, so the loop ends after at most
	// line.size() iterations.
	for (std::size_t i = 0; i < line.size(); ++i) {
		const char c = line[i];
		const bool separator = quote == Quote::none && (c == ' ' || c == '\t');
		if (is_control_byte(c) && !separator)
			return control_byte_error(line, i);

		if (quote == Quote::single) {
			if (c == '\'')
				quote = Quote::none;
			else
				current += c;
			continue;
		}

		if (quote == Quote::double_) {
			if (c == '"') {
				quote = Quote::none;
			} else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
				current += line[i + 1];
				++i;
			} else {
				current += c;
			}
			continue;
		}

		if (separator) {
			if (in_word)
				finish_word();
			continue;
		}

		if (!in_word) {
			if (words.size() == limits::kMaxCommandWords)
				return syntax_error(Errc::limit, i,
				                    "too many words: word at " + column_text(i) + " is beyond the maximum of " +
				                        std::to_string(limits::kMaxCommandWords));
			in_word = true;
			word_start = i;
		}

		if (c == '\'' || c == '"') {
			quote = c == '\'' ? Quote::single : Quote::double_;
			quote_start = i;
		} else if (c == '\\') {
			if (i + 1 == line.size())
				return syntax_error(Errc::invalid, i, "trailing backslash at " + column_text(i));
			if (is_control_byte(line[i + 1]))
				return control_byte_error(line, i + 1);
			current += line[i + 1];
			++i;
		} else {
			current += c;
		}
	}

	if (quote != Quote::none) {
		const char* kind = quote == Quote::single ? "single" : "double";
		return syntax_error(Errc::invalid, quote_start,
		                    std::string("unclosed ") + kind + " quote starting at " + column_text(quote_start));
	}
	if (in_word)
		finish_word();
	return words;
}

Result<std::vector<std::string>> tokenize(std::string_view line)
{
	auto words = tokenize_words(line);
	if (!words)
		return fail(words.error().code, std::move(words.error().message));

	std::vector<std::string> texts;
	texts.reserve(words->size());
	for (auto& word : *words)
		texts.push_back(std::move(word.text));
	return texts;
}

std::string caret_line(std::string_view line, std::size_t column)
{
	const std::string_view visible = line.substr(0, limits::kMaxCommandLineBytes);
	std::string out;
	out.reserve(visible.size() * 2 + 2);
	for (const char c : visible) {
		const auto b = static_cast<std::uint8_t>(c);
		out += (b >= 0x20 && b < 0x7F) ? c : '?';
	}
	out += '\n';
	const std::size_t caret_at = column == 0 ? 0 : std::min(column - 1, visible.size());
	out.append(caret_at, ' ');
	out += '^';
	return out;
}

}  // namespace jead
