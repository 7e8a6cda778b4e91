#include "archive/message_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "common/sha256.h"

namespace popvault {
namespace {

// Compressed output beyond this much per level goes to a temporary file.
constexpr size_t kSpoolMemoryLimit = 1 << 20;
// Input is held back up to this size, so a message that fits is compressed
// with its size known: zstd then sizes its tables to the message (cheaper for
// the common small mail) and records the content size in the frame header.
constexpr size_t kOneShotLimit = 256 << 10;
// The header block is looked for only this far into the message.
constexpr size_t kHeaderScanLimit = 256 << 10;
constexpr size_t kMaxHeaderOctets = 998;
// Idle compression contexts kept per thread (see CCtxPool).
constexpr size_t kMaxIdleContexts = 8;

std::string ErrnoText() { return std::strerror(errno); }

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::IOError("writing message spool file: " + ErrnoText());
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

// Compressed bytes of one message: in memory up to kSpoolMemoryLimit, then in
// an unlinked file in `dir` (nothing is left behind whatever happens).
class Spool : public CompressedSource {
 public:
  Spool(std::string dir, Codec codec) : dir_(std::move(dir)), codec_(std::move(codec)) {}
  ~Spool() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  Status Append(const char* data, size_t n) {
    if (fd_ < 0 && memory_.size() + n > kSpoolMemoryLimit) POPVAULT_RETURN_IF_ERROR(Spill());
    if (fd_ >= 0) {
      POPVAULT_RETURN_IF_ERROR(WriteAll(fd_, data, n));
    } else {
      memory_.append(data, n);
    }
    size_ += n;
    return Status::OK();
  }

  Status Read(char* buf, size_t cap, size_t* n) override {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(cap, size_ - pos_));
    if (fd_ < 0) {
      std::memcpy(buf, memory_.data() + pos_, want);
      *n = want;
    } else {
      ssize_t r;
      do {
        r = ::pread(fd_, buf, want, static_cast<off_t>(pos_));
      } while (r < 0 && errno == EINTR);
      if (r < 0) return Status::IOError("reading message spool file: " + ErrnoText());
      if (r == 0 && want > 0) return Status::IOError("message spool file is truncated");
      *n = static_cast<size_t>(r);
    }
    pos_ += *n;
    return Status::OK();
  }

  Status Rewind() override {
    pos_ = 0;
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }
  const Codec& codec() const override { return codec_; }

 private:
  Status Spill() {
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
      // The file system has no O_TMPFILE: create a named file and unlink it.
      std::string path = dir_ + "/popvault-spool-XXXXXX";
      fd_ = ::mkostemp(path.data(), O_CLOEXEC);
      if (fd_ >= 0) ::unlink(path.c_str());
    }
    if (fd_ < 0) return Status::IOError("creating a spool file in " + dir_ + ": " + ErrnoText());
    POPVAULT_RETURN_IF_ERROR(WriteAll(fd_, memory_.data(), memory_.size()));
    std::string().swap(memory_);
    return Status::OK();
  }

  std::string dir_;
  Codec codec_;
  std::string memory_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
};

// What compressed(level) hands out when there is nothing valid to hand out.
class ErrorSource : public ByteSource {
 public:
  explicit ErrorSource(Status status) : status_(std::move(status)) {}
  Status Read(char*, size_t, size_t*) override { return status_; }
  Status Rewind() override { return status_; }
  uint64_t Size() const override { return 0; }

 private:
  Status status_;
};

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
using CCtxPtr = std::unique_ptr<ZSTD_CCtx, CCtxDeleter>;

// A context keeps its tables between frames; reusing it saves allocating and
// setting them up again for every message (one writer per message).
class CCtxPool {
 public:
  static CCtxPtr Take() {
    auto& idle = Idle();
    if (idle.empty()) return CCtxPtr(ZSTD_createCCtx());
    CCtxPtr c = std::move(idle.back());
    idle.pop_back();
    return c;
  }
  static void Return(CCtxPtr c) {
    auto& idle = Idle();
    if (!c || idle.size() >= kMaxIdleContexts) return;
    ZSTD_CCtx_reset(c.get(), ZSTD_reset_session_and_parameters);
    idle.push_back(std::move(c));
  }

 private:
  static std::vector<CCtxPtr>& Idle() {
    thread_local std::vector<CCtxPtr> idle;
    return idle;
  }
};

Status ZstdError(const Codec& codec, size_t code) {
  return Status::IOError(codec.ToString() + ": " + ZSTD_getErrorName(code));
}

// One zstd frame being written into a Spool.
class LevelStream {
 public:
  LevelStream(const Codec& codec, const std::string& spool_dir)
      : codec_(codec),
        cctx_(CCtxPool::Take()),
        spool_(spool_dir, codec),
        out_(std::make_unique_for_overwrite<char[]>(kOutSize)) {
    if (!cctx_) {
      status_ = Status::IOError("zstd: cannot create a compression context");
      return;
    }
    size_t r = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, codec.level);
    // The frame checksum lets `zstd -t` check an object without popvault.
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r) && codec.dictionary) {
      // The frame header names the dictionary's ID (zstd's default, made
      // explicit: a reader finds the dictionary by it).
      r = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_dictIDFlag, 1);
      const ZSTD_CDict* cdict = codec.dictionary->cdict(codec.level);
      if (cdict == nullptr) {
        status_ = Status::IOError(codec.ToString() + ": cannot build the compression tables");
        return;
      }
      if (!ZSTD_isError(r)) r = ZSTD_CCtx_refCDict(cctx_.get(), cdict);
    }
    if (ZSTD_isError(r)) status_ = ZstdError(codec, r);
  }
  ~LevelStream() { CCtxPool::Return(std::move(cctx_)); }
  LevelStream(const LevelStream&) = delete;
  LevelStream& operator=(const LevelStream&) = delete;

  const Codec& codec() const { return codec_; }
  Spool& spool() { return spool_; }

  // Compresses a whole message of known size into one frame.
  Status CompressAll(const char* data, size_t n) {
    POPVAULT_RETURN_IF_ERROR(status_);
    const size_t r = ZSTD_CCtx_setPledgedSrcSize(cctx_.get(), n);
    if (ZSTD_isError(r)) return status_ = ZstdError(codec_, r);
    return Compress(data, n, ZSTD_e_end);
  }

  Status Continue(const char* data, size_t n) { return Compress(data, n, ZSTD_e_continue); }
  Status End() { return Compress(nullptr, 0, ZSTD_e_end); }

 private:
  Status Compress(const char* data, size_t n, ZSTD_EndDirective mode) {
    POPVAULT_RETURN_IF_ERROR(status_);
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{out_.get(), kOutSize, out_pos_};
      const size_t r = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
      if (ZSTD_isError(r)) return status_ = ZstdError(codec_, r);
      out_pos_ = out.pos;
      const bool done = mode == ZSTD_e_end ? r == 0 : in.pos == in.size;
      if (out_pos_ == kOutSize || (done && mode == ZSTD_e_end)) {
        status_ = spool_.Append(out_.get(), out_pos_);
        POPVAULT_RETURN_IF_ERROR(status_);
        out_pos_ = 0;
      }
      if (done) return Status::OK();
    }
  }

  Codec codec_;  // holds the dictionary while cctx_ refers to its tables
  CCtxPtr cctx_;
  Spool spool_;
  // zstd output, moved to the spool when full. Not zero-filled: a writer per
  // message made that memset a visible cost.
  static inline const size_t kOutSize = ZSTD_CStreamOutSize();
  std::unique_ptr<char[]> out_;
  size_t out_pos_ = 0;
  Status status_;  // sticky: once broken, always broken
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == y;
         });
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Finds the header block (up to the first empty line; CRLF, LF and lone CR
// all end a line) and extracts the fields the archive record lists.
class HeaderScanner {
 public:
  void Feed(const char* data, size_t n) {
    if (done_) return;
    const size_t scan = std::min(n, kHeaderScanLimit - block_.size());
    size_t i = 0;
    for (; i < scan; ++i) {
      const char c = data[i];
      if (c == '\r' || c == '\n') {
        const bool lf_after_cr = c == '\n' && prev_cr_;
        prev_cr_ = c == '\r';
        if (lf_after_cr) continue;
        if (at_line_start_) {
          done_ = true;
          break;
        }
        at_line_start_ = true;
      } else {
        prev_cr_ = false;
        at_line_start_ = false;
      }
    }
    block_.append(data, i);
    if (block_.size() >= kHeaderScanLimit) done_ = true;
  }

  MessageHeaders Parse() const {
    std::string raw[4];  // message_id, date, from, subject
    bool seen[4] = {};
    static constexpr std::string_view kNames[4] = {"message-id", "date", "from", "subject"};
    std::string* current = nullptr;  // the field that continuation lines extend
    std::string_view rest = block_;
    while (!rest.empty()) {
      const size_t eol = std::min(rest.find_first_of("\r\n"), rest.size());
      const std::string_view line = rest.substr(0, eol);
      rest.remove_prefix(eol);
      if (rest.starts_with("\r\n")) {
        rest.remove_prefix(2);
      } else if (!rest.empty()) {
        rest.remove_prefix(1);
      }
      if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
        if (current) current->append(line);  // unfolding: drop only the line break
        continue;
      }
      current = nullptr;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = TrimBlanks(line.substr(0, colon));
      for (int f = 0; f < 4; ++f) {
        if (!seen[f] && EqualsIgnoreCase(name, kNames[f])) {
          seen[f] = true;
          current = &raw[f];
          current->assign(line.substr(colon + 1));
        }
      }
    }
    auto clean = [](const std::string& s) { return ToValidUtf8(TrimBlanks(s), kMaxHeaderOctets); };
    return MessageHeaders{clean(raw[0]), clean(raw[1]), clean(raw[2]), clean(raw[3])};
  }

 private:
  std::string block_;
  bool done_ = false;
  bool at_line_start_ = true;
  bool prev_cr_ = false;
};

}  // namespace

struct MessageWriter::Impl {
  std::vector<std::unique_ptr<LevelStream>> levels;
  Sha256 sha;
  HeaderScanner scanner;
  std::string pending;     // input held back while the message may fit kOneShotLimit
  bool streaming = false;  // pending was handed to zstd; the size is unknown
  uint64_t size = 0;
  bool finished = false;
  Status status;  // sticky first error
  std::string sha256_hex;
  MessageHeaders headers;
  ErrorSource not_ready{
      Status::InvalidArgument("MessageWriter: no finished output for this compression level")};

  Status StartStreaming() {
    streaming = true;
    for (auto& l : levels) POPVAULT_RETURN_IF_ERROR(l->Continue(pending.data(), pending.size()));
    std::string().swap(pending);
    return Status::OK();
  }

  Status Compress(const char* data, size_t n) {
    if (!streaming && pending.size() + n <= kOneShotLimit) {
      pending.append(data, n);
      return Status::OK();
    }
    if (!streaming) POPVAULT_RETURN_IF_ERROR(StartStreaming());
    for (auto& l : levels) POPVAULT_RETURN_IF_ERROR(l->Continue(data, n));
    return Status::OK();
  }

  Status EndFrames() {
    for (auto& l : levels) {
      POPVAULT_RETURN_IF_ERROR(streaming ? l->End()
                                         : l->CompressAll(pending.data(), pending.size()));
    }
    return Status::OK();
  }
};

MessageWriter::MessageWriter(std::span<const Codec> codecs, std::string spool_dir)
    : impl_(std::make_unique<Impl>()) {
  if (spool_dir.empty()) {
    std::error_code ec;
    spool_dir = std::filesystem::temp_directory_path(ec).string();
    if (ec) spool_dir = "/tmp";
  }
  for (const Codec& codec : codecs) {
    const bool dup = std::any_of(impl_->levels.begin(), impl_->levels.end(),
                                 [&](const auto& l) { return l->codec() == codec; });
    if (!dup) impl_->levels.push_back(std::make_unique<LevelStream>(codec, spool_dir));
  }
  impl_->pending.reserve(std::min<size_t>(kOneShotLimit, 64 << 10));
}

namespace {
std::vector<Codec> PlainCodecs(const std::vector<int>& levels) {
  std::vector<Codec> codecs;
  for (int level : levels) codecs.push_back(Codec{level, nullptr});
  return codecs;
}
}  // namespace

MessageWriter::MessageWriter(const std::vector<int>& compression_levels, std::string spool_dir)
    : MessageWriter(std::span<const Codec>(PlainCodecs(compression_levels)), std::move(spool_dir)) {
}

MessageWriter::~MessageWriter() = default;

Status MessageWriter::Append(const char* data, size_t n) {
  Impl& m = *impl_;
  if (!m.status.ok()) return m.status;
  if (m.finished) return Status::InvalidArgument("MessageWriter: Append after Finish");
  m.sha.Update(data, n);
  m.scanner.Feed(data, n);
  m.size += n;
  return m.status = m.Compress(data, n);
}

Status MessageWriter::Finish() {
  Impl& m = *impl_;
  if (!m.status.ok() || m.finished) return m.status;
  m.status = m.EndFrames();
  if (!m.status.ok()) return m.status;
  std::string().swap(m.pending);
  m.sha256_hex = m.sha.FinishHex();
  m.headers = m.scanner.Parse();
  m.finished = true;
  return Status::OK();
}

const std::string& MessageWriter::sha256_hex() const { return impl_->sha256_hex; }
uint64_t MessageWriter::size() const { return impl_->size; }
const MessageHeaders& MessageWriter::headers() const { return impl_->headers; }

ByteSource& MessageWriter::compressed(const Codec& codec) {
  if (!impl_->finished) return impl_->not_ready;
  for (auto& l : impl_->levels) {
    if (l->codec() == codec) return l->spool();
  }
  return impl_->not_ready;
}

ByteSource& MessageWriter::compressed(int level) { return compressed(Codec{level, nullptr}); }

}  // namespace popvault
