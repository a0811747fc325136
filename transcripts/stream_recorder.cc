#include "transcripts/stream_recorder.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "common/encoding.h"

namespace jead::transcript {

void Sha256Stream::Deleter::operator()(EVP_MD_CTX* context) const
{
	EVP_MD_CTX_free(context);
}

Sha256Stream::Sha256Stream() : context_(EVP_MD_CTX_new())
{
	// Allocation and SHA-256 set-up fail only when memory runs out.
	if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
		throw std::bad_alloc();
}

void Sha256Stream::update(std::span<const std::uint8_t> data)
{
	if (!data.empty())
		EVP_DigestUpdate(context_.get(), data.data(), data.size());
}

std::string Sha256Stream::finish()
{
	std::uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int size = 0;
	EVP_DigestFinal_ex(context_.get(), digest, &size);
	return hex_encode(std::span<const std::uint8_t>(digest, size));
}

void TailBuffer::push(std::span<const std::uint8_t> data)
{
	if (capacity_ == 0 || data.empty())
		return;
	if (ring_.empty())
		ring_.resize(capacity_);

	if (data.size() >= capacity_) {
		std::memcpy(ring_.data(), data.data() + data.size() - capacity_, capacity_);
		start_ = 0;
		size_ = capacity_;
		return;
	}

	// Copy in at most two pieces, wrapping at the end of the ring.
	const std::size_t end = (start_ + size_) % capacity_;
	const std::size_t first = std::min(data.size(), capacity_ - end);
	std::memcpy(ring_.data() + end, data.data(), first);
	std::memcpy(ring_.data(), data.data() + first, data.size() - first);
	if (size_ + data.size() > capacity_) {
		start_ = (start_ + size_ + data.size() - capacity_) % capacity_;
		size_ = capacity_;
	} else {
		size_ += data.size();
	}
}

std::string TailBuffer::contents() const
{
	std::string out;
	out.reserve(size_);
	const std::size_t first = std::min(size_, capacity_ - start_);
	out.append(reinterpret_cast<const char*>(ring_.data()) + start_, first);
	out.append(reinterpret_cast<const char*>(ring_.data()), size_ - first);
	return out;
}

void TailBuffer::clear()
{
	ring_ = {};
	start_ = 0;
	size_ = 0;
}

StreamRecorder::StreamRecorder(StreamRecording recording)
	: recording_(recording),
	  tail_(recording.mode == StreamRecording::Mode::head_tail ? recording.tail_bytes : 0)
{
	// Head-tail and digest modes report the digest of the whole stream.
	if (recording_.mode != StreamRecording::Mode::full)
		hash_ = std::make_unique<Sha256Stream>();
}

std::size_t StreamRecorder::accept(std::span<const std::uint8_t> data)
{
	total_ += data.size();
	if (hash_)
		hash_->update(data);
	if (digest_only_)
		return 0;

	switch (recording_.mode) {
	case StreamRecording::Mode::full:
		return data.size();
	case StreamRecording::Mode::head_tail: {
		const std::uint64_t room = recording_.head_bytes > recorded_ ? recording_.head_bytes - recorded_ : 0;
		return static_cast<std::size_t>(std::min<std::uint64_t>(room, data.size()));
	}
	case StreamRecording::Mode::digest:
		return 0;
	}
	return 0;
}

void StreamRecorder::keep_tail(std::span<const std::uint8_t> data)
{
	if (!digest_only_ && recording_.mode == StreamRecording::Mode::head_tail)
		tail_.push(data);
}

void StreamRecorder::drop_to_digest(std::span<const std::uint8_t> unrecorded)
{
	if (digest_only_)
		return;
	digest_only_ = true;
	tail_.clear();
	if (hash_)
		return;
	// A full-mode stream: everything before `unrecorded` is in records.
	hash_ = std::make_unique<Sha256Stream>();
	digest_offset_ = total_ - unrecorded.size();
	hash_->update(unrecorded);
}

std::string StreamRecorder::finish_digest()
{
	std::string digest = hash_->finish();
	hash_.reset();
	return digest;
}

}  // namespace jead::transcript
