// Recording state of one data stream (stdout, stderr, stdin or keystrokes)
// under the modes of writer.h's StreamRecording: full, head-tail or digest.
// TranscriptWriter owns one per stream and decides what goes into records;
// this class only keeps the counts, the tail buffer and the SHA-256.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transcripts/writer.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace jead::transcript {

// Incremental SHA-256 over OpenSSL EVP.
class Sha256Stream {
public:
	Sha256Stream();
	void update(std::span<const std::uint8_t> data);
	// Returns the lowercase hex digest. Call once.
	std::string finish();

private:
	struct Deleter {
		void operator()(EVP_MD_CTX* context) const;
	};
	std::unique_ptr<EVP_MD_CTX, Deleter> context_;
};

// The last `capacity` bytes of a stream, in a ring buffer allocated on the
// first push.
class TailBuffer {
public:
	explicit TailBuffer(std::size_t capacity = 0) : capacity_(capacity) {}
	void push(std::span<const std::uint8_t> data);
	// Returns the kept bytes, oldest first.
	std::string contents() const;
	std::size_t size() const { return size_; }
	void clear();

private:
	std::size_t capacity_ = 0;
	std::vector<std::uint8_t> ring_;
	std::size_t start_ = 0;
	std::size_t size_ = 0;
};

class StreamRecorder {
public:
	explicit StreamRecorder(StreamRecording recording = {});

	const StreamRecording& recording() const { return recording_; }

	// Counts `data`, adds it to the digest when one is kept, and returns
	// how many leading bytes of it belong in records. That is all of them
	// in full mode and up to the rest of the head in head-tail mode. It is
	// none in digest mode and after drop_to_digest().
	std::size_t accept(std::span<const std::uint8_t> data);
	// Notes that `n` bytes returned by accept() were written as records.
	void recorded(std::size_t n) { recorded_ += n; }
	// Puts bytes after the head into the tail buffer (head-tail mode only).
	void keep_tail(std::span<const std::uint8_t> data);

	// Stops recording data: from now on only the count and the digest are
	// kept. A stream that had no digest starts one at its first byte not
	// recorded, so `unrecorded` (the bytes accepted but not written, at the
	// end of the last accept()) are hashed here. Drops the tail buffer.
	void drop_to_digest(std::span<const std::uint8_t> unrecorded);
	bool digest_only() const { return digest_only_; }

	std::uint64_t total() const { return total_; }
	std::uint64_t recorded_bytes() const { return recorded_; }
	const TailBuffer& tail() const { return tail_; }
	// Bytes neither in records nor in the tail buffer: the gap before the tail.
	std::uint64_t skipped() const { return total_ - recorded_ - tail_.size(); }

	// True when a digest record is due at the end of the stream.
	bool has_digest() const { return hash_ != nullptr; }
	// Stream bytes before the first byte the digest covers.
	std::uint64_t digest_offset() const { return digest_offset_; }
	// Returns the hex SHA-256 of the covered bytes. Call once.
	std::string finish_digest();

private:
	StreamRecording recording_;
	std::uint64_t total_ = 0;
	std::uint64_t recorded_ = 0;
	bool digest_only_ = false;
	TailBuffer tail_;
	std::unique_ptr<Sha256Stream> hash_;
	std::uint64_t digest_offset_ = 0;
};

}  // namespace jead::transcript
