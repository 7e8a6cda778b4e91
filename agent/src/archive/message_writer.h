// MessageWriter: the sink a RETR streams into. In one pass over the raw bytes
// it computes the SHA-256, zstd-compresses (once per distinct Codec, i.e.
// compression level and dictionary, the account's stores use) and captures
// the header fields the archive record lists.
//
// Memory is bounded whatever the message size: compressed output stays in
// memory up to a small limit and spills to an unlinked temporary file in
// `spool_dir` beyond it.
//
// Not thread-safe. One instance per message.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "archive/dictionary.h"
#include "archive/record.h"
#include "popvault/byte_stream.h"

namespace popvault {

struct MessageHeaders {
  std::string message_id, date, from, subject;  // see ArchiveRecord
};

// A ByteSource of one zstd frame that knows the codec that made it.
class CompressedSource : public ByteSource {
 public:
  virtual const Codec& codec() const = 0;
};

class MessageWriter : public ByteSink {
 public:
  // One zstd frame per distinct codec (a codec with a dictionary makes frames
  // that name its ID and need it to decompress).
  MessageWriter(std::span<const Codec> codecs, std::string spool_dir);
  // Plain frames (no dictionary) at each of these levels.
  MessageWriter(const std::vector<int>& compression_levels, std::string spool_dir);
  ~MessageWriter() override;
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

  // After an error every later call returns that error.
  Status Append(const char* data, size_t n) override;

  // Ends the message (flushes the zstd frames). Call once, after the last
  // Append; the accessors below are valid only after it returned OK.
  Status Finish();

  const std::string& sha256_hex() const;
  uint64_t size() const;
  const MessageHeaders& headers() const;
  // The complete zstd frame for `codec` (one of the constructor's codecs).
  // Owned by this writer; valid until it is destroyed. For any other codec,
  // or before Finish returned OK, a source whose reads fail (InvalidArgument).
  // Also a CompressedSource, so Archive::PutMessage can check the dictionary.
  ByteSource& compressed(const Codec& codec);
  // compressed(Codec{level}): the plain frame at `level`.
  ByteSource& compressed(int level);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace popvault
