#include "archive/archive.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string_view>
#include <vector>

#include "archive/message_writer.h"
#include "common/sha256.h"

namespace popvault {
namespace {

// A record object far beyond any real record is treated as damage rather than
// read into memory.
constexpr size_t kMaxRecordBytes = 1 << 20;

// Longest key-safe UIDL used as is; storage keys are at most 512 bytes.
constexpr size_t kMaxKeySafeUidl = 255;

// Storage keys allow only [A-Za-z0-9._-] between slashes and never "..", so
// the UIDL is escaped again for the key: bytes outside [A-Za-z0-9-] (including
// '.' and '_') become _XX, uppercase hex. A form longer than kMaxKeySafeUidl
// becomes "_H" + SHA-256 of the UIDL instead ("_H" is no escape, so the two
// forms never meet). Either way no two UIDLs share a key.
std::string KeySafeUidl(const std::string& uidl) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(uidl.size());
  for (char c : uidl) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '-') {
      out.push_back(c);
    } else {
      out.push_back('_');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  if (out.size() <= kMaxKeySafeUidl) return out;
  return "_H" + Sha256::Hex(uidl);
}

// The N of ".../<key-safe uidl>.<N>.json" (0 without it, or if N is not a
// plain decimal: the caller's key check then reports the key).
uint32_t GenerationOfRecordKey(const std::string& key) {
  const size_t name = key.rfind('/') + 1;
  const size_t dot = key.find('.', name);
  const size_t last = key.rfind('.');
  if (dot == std::string::npos || dot == last) return 0;
  const std::string digits = key.substr(dot + 1, last - dot - 1);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0' ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return static_cast<uint32_t>(std::stoul(digits));
}

class BoundedStringSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    if (data_.size() + n > kMaxRecordBytes) return Status::Corruption("record larger than 1 MiB");
    data_.append(data, n);
    return Status::OK();
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

// The longest zstd frame header (ZSTD_FRAMEHEADERSIZE_MAX, not in the stable
// API): this many bytes always tell the frame's dictionary ID.
constexpr size_t kMaxFrameHeader = 18;

// A lookup of a dictionary by ID that does no I/O (null if not at hand).
using DictionaryLookup = std::function<std::shared_ptr<const ZstdDictionary>(uint32_t)>;

// Decompresses one stored object as it streams in, hashes the result and
// forwards it to `out` (if any). Everything but exactly one complete zstd
// frame is a corruption. The frame header is read before anything is
// decompressed: if it names a dictionary `lookup` does not have, Append stops
// (missing_dictionary() says which) before `out` received a byte. With a
// `limit`, Append stops once that much output went to `out` (reached_limit).
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
using DCtxPtr = std::unique_ptr<ZSTD_DCtx, DCtxDeleter>;

// Decompression contexts kept per thread between reads: creating one per
// message was a visible cost of a verified delete pass.
class DCtxPool {
 public:
  static DCtxPtr Take() {
    auto& idle = Idle();
    if (idle.empty()) return DCtxPtr(ZSTD_createDCtx());
    DCtxPtr d = std::move(idle.back());
    idle.pop_back();
    return d;
  }
  static void Return(DCtxPtr d) {
    auto& idle = Idle();
    if (!d || idle.size() >= 2) return;
    ZSTD_DCtx_reset(d.get(), ZSTD_reset_session_and_parameters);  // drops any dictionary
    idle.push_back(std::move(d));
  }

 private:
  static std::vector<DCtxPtr>& Idle() {
    thread_local std::vector<DCtxPtr> idle;
    return idle;
  }
};

class VerifyingSink : public ByteSink {
 public:
  explicit VerifyingSink(ByteSink* out, DictionaryLookup lookup = nullptr, uint64_t limit = 0)
      : out_(out),
        lookup_(std::move(lookup)),
        limit_(limit),
        dctx_(DCtxPool::Take()),
        buffer_(std::make_unique_for_overwrite<char[]>(kBufferSize)) {}
  ~VerifyingSink() override { DCtxPool::Return(std::move(dctx_)); }
  VerifyingSink(const VerifyingSink&) = delete;
  VerifyingSink& operator=(const VerifyingSink&) = delete;

  Status Append(const char* data, size_t n) override {
    compressed_bytes_ += n;
    if (!dctx_) return Fail("cannot create a zstd decompression context");
    if (header_done_) return Decompress(data, n);
    // Usually the first piece holds the whole frame header; else gather it.
    if (header_.empty()) {
      POPVAULT_RETURN_IF_ERROR(ReadHeader(data, n));
      if (header_done_) return Decompress(data, n);
      header_.assign(data, n);
      return Status::OK();
    }
    header_.append(data, n);
    POPVAULT_RETURN_IF_ERROR(ReadHeader(header_.data(), header_.size()));
    if (!header_done_) return Status::OK();
    std::string gathered;
    gathered.swap(header_);
    return Decompress(gathered.data(), gathered.size());
  }

  // After the whole object went through Append: checks the frame ended and
  // the content hashes to `sha256`.
  Status Finish(const std::string& sha256) {
    if (!corruption_.empty()) return Status::Corruption(corruption_);
    if (!header_done_ && !header_.empty()) {
      // The whole object is shorter than the longest frame header.
      std::string gathered;
      gathered.swap(header_);
      POPVAULT_RETURN_IF_ERROR(ReadHeader(gathered.data(), gathered.size(), /*final=*/true));
      POPVAULT_RETURN_IF_ERROR(Decompress(gathered.data(), gathered.size()));
    }
    if (!frame_done_) return Fail("truncated zstd frame");
    const std::string actual = sha_.FinishHex();
    if (actual != sha256) return Fail("content has SHA-256 " + actual);
    return Status::OK();
  }

  // Set when Append failed because the object is bad (not because `out` did).
  const std::string& corruption() const { return corruption_; }
  uint64_t compressed_bytes() const { return compressed_bytes_; }
  // The dictionary ID the frame names that `lookup` did not provide (or 0);
  // set by Append or Finish.
  uint32_t missing_dictionary() const { return missing_dictionary_; }
  bool reached_limit() const { return reached_limit_; }

 private:
  // Learns the frame's dictionary ID once `n` bytes surely hold the whole
  // frame header (or they are the whole object: `final`).
  Status ReadHeader(const char* data, size_t n, bool final = false) {
    if (n < kMaxFrameHeader && !final) return Status::OK();  // needs more bytes
    header_done_ = true;
    // 0 also for what is not a zstd frame (decompression reports it) and for
    // skippable frames.
    const uint32_t id = ZSTD_getDictID_fromFrame(data, n);
    if (id == 0) return Status::OK();
    dictionary_ = lookup_ ? lookup_(id) : nullptr;
    if (!dictionary_) {
      missing_dictionary_ = id;
      return Status::Aborted("dictionary " + std::to_string(id) + " not loaded");
    }
    const size_t ref = ZSTD_DCtx_refDDict(dctx_.get(), dictionary_->ddict());
    if (ZSTD_isError(ref)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(ref));
    return Status::OK();
  }

  Status Decompress(const char* data, size_t n) {
    ZSTD_inBuffer in{data, n, 0};
    while (in.pos < in.size) {
      if (frame_done_) return Fail("data after the end of the zstd frame");
      ZSTD_outBuffer out{buffer_.get(), kBufferSize, 0};
      const size_t r = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(r)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(r));
      frame_done_ = r == 0;
      POPVAULT_RETURN_IF_ERROR(Emit(out.pos));
      // A full buffer may hide more output for the same input: drain it.
      while (out.pos == out.size && !frame_done_) {
        out.pos = 0;
        const size_t r2 = ZSTD_decompressStream(dctx_.get(), &out, &in);
        if (ZSTD_isError(r2)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(r2));
        frame_done_ = r2 == 0;
        POPVAULT_RETURN_IF_ERROR(Emit(out.pos));
      }
    }
    return Status::OK();
  }

  Status Emit(size_t n) {
    if (n == 0) return Status::OK();
    if (limit_ != 0 && emitted_ + n >= limit_) {
      n = static_cast<size_t>(limit_ - emitted_);
      reached_limit_ = true;
    }
    sha_.Update(buffer_.get(), n);
    emitted_ += n;
    if (out_) POPVAULT_RETURN_IF_ERROR(out_->Append(buffer_.get(), n));
    return reached_limit_ ? Status::Aborted("read limit reached") : Status::OK();
  }

  Status Fail(std::string what) {
    if (dictionary_) {
      what += " (frame compressed with dictionary " + std::to_string(dictionary_->id()) + ")";
    }
    corruption_ = std::move(what);
    return Status::Corruption(corruption_);
  }

  ByteSink* out_;
  DictionaryLookup lookup_;
  uint64_t limit_;
  DCtxPtr dctx_;
  static inline const size_t kBufferSize = ZSTD_DStreamOutSize();
  std::unique_ptr<char[]> buffer_;
  Sha256 sha_;
  std::string header_;  // the first bytes, while the frame header is incomplete
  bool header_done_ = false;
  std::shared_ptr<const ZstdDictionary> dictionary_;  // the frame's, if any
  uint32_t missing_dictionary_ = 0;
  bool frame_done_ = false;
  uint64_t emitted_ = 0;
  bool reached_limit_ = false;
  uint64_t compressed_bytes_ = 0;
  std::string corruption_;
};

std::string Sha256Hex(const std::string& data) { return Sha256::Hex(data); }

// Collects an object of at most `limit` bytes.
class LimitedSink : public ByteSink {
 public:
  LimitedSink(size_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  Status Append(const char* p, size_t n) override {
    if (data.size() + n > limit_) {
      return Status::Corruption(what_ + " is larger than " + std::to_string(limit_) + " bytes");
    }
    data.append(p, n);
    return Status::OK();
  }
  std::string data;

 private:
  size_t limit_;
  std::string what_;
};

std::string DictionaryPrefix(uint32_t id) { return "dicts/" + std::to_string(id) + "-"; }

// Compresses and decompresses a few bytes with `dict`: it works both ways,
// and the frame names its ID.
Status SelfTest(const ZstdDictionary& dict, int level) {
  const std::string probe =
      "From: popvault <self-test@localhost>\r\nSubject: dictionary self-test\r\n\r\nok\r\n";
  const ZSTD_CDict* cdict = dict.cdict(level);
  if (cdict == nullptr) return Status::IOError("cannot build its compression tables");
  std::string frame(ZSTD_compressBound(probe.size()), '\0');
  std::string back(probe.size() + 1, '\0');
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (!cctx || !dctx) {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
    return Status::IOError("out of memory");
  }
  size_t d = 0;
  const size_t c =
      ZSTD_compress_usingCDict(cctx, frame.data(), frame.size(), probe.data(), probe.size(), cdict);
  {
    if (!ZSTD_isError(c)) {
      d = ZSTD_decompress_usingDDict(dctx, back.data(), back.size(), frame.data(), c, dict.ddict());
    }
  }
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  if (ZSTD_isError(c)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(c));
  if (ZSTD_isError(d) || back.substr(0, d) != probe ||
      ZSTD_getDictID_fromFrame(frame.data(), c) != dict.id()) {
    return Status::Corruption("a round trip through it fails");
  }
  return Status::OK();
}

}  // namespace

Archive::Archive(std::string store_name, std::unique_ptr<Storage> storage, int compression_level)
    : name_(std::move(store_name)),
      storage_(std::move(storage)),
      compression_level_(compression_level) {}

std::string Archive::MessageKey(const std::string& sha256) {
  return "messages/" + sha256.substr(0, 2) + "/" + sha256 + ".zst";
}

Status Archive::FindMessages(const std::string& prefix,
                             const std::function<bool(const std::string& sha256)>& fn) {
  if (prefix.size() < 2 || prefix.size() > 64 ||
      prefix.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::InvalidArgument("'" + prefix + "' is not a SHA-256 prefix");
  }
  const std::string dir = "messages/" + prefix.substr(0, 2) + "/";
  return storage_->List(dir + prefix, [&](const std::string& key) {
    return fn(key.substr(dir.size(), key.size() - dir.size() - 4));  // strip ".zst"
  });
}

// The key-safe UIDL never holds '.', so ".<N>" before ".json" cannot be
// mistaken for part of it.
std::string Archive::RecordKey(const std::string& account, const std::string& uidl,
                               uint32_t generation) {
  const std::string suffix = generation == 0 ? "" : "." + std::to_string(generation);
  return "records/" + account + "/" + KeySafeUidl(uidl) + suffix + ".json";
}

Status Archive::PutMessage(const std::string& sha256, ByteSource& compressed, uint64_t* stored_size,
                           bool* reused) {
  if (reused != nullptr) *reused = false;
  const std::string context = "store " + name_ + ": message " + sha256;
  if (!IsValidSha256Hex(sha256)) return Status::InvalidArgument(context + ": not a SHA-256");
  const std::string key = MessageKey(sha256);
  bool exists = false;
  POPVAULT_RETURN_IF_ERROR(storage_->Exists(key, &exists).WithContext(context));
  if (exists && !rewrite_existing_) {
    uint64_t size = 0;
    const Status s = Fetch(sha256, nullptr, &size);
    if (s.ok()) {
      *stored_size = size;
      if (reused != nullptr) *reused = true;
      return Status::OK();
    }
    // A damaged copy is replaced (below); one that vanished meanwhile too.
    if (s.code() != Status::Code::kCorruption && s.code() != Status::Code::kNotFound) return s;
  }
  POPVAULT_RETURN_IF_ERROR(CheckDictionaryOf(compressed).WithContext(context));
  POPVAULT_RETURN_IF_ERROR(storage_->Put(key, compressed).WithContext(context));
  *stored_size = compressed.Size();
  return Status::OK();
}

Status Archive::PutRecord(const ArchiveRecord& record) {
  const std::string key = RecordKey(record.account, record.uidl, record.generation);
  const std::string context = "store " + name_ + ": record " + key;
  if (!IsValidAccountName(record.account)) {
    return Status::InvalidArgument(context + ": bad account name");
  }
  if (!IsValidSha256Hex(record.sha256)) return Status::InvalidArgument(context + ": bad sha256");
  StringSource source(RecordToJson(record));
  return storage_->Put(key, source).WithContext(context);
}

Status Archive::RemoveMessage(const std::string& sha256) {
  const std::string context = "store " + name_ + ": message " + sha256;
  if (!IsValidSha256Hex(sha256)) return Status::InvalidArgument(context + ": not a SHA-256");
  return storage_->Remove(MessageKey(sha256)).WithContext(context);
}

Status Archive::RemoveRecord(const std::string& account, const std::string& uidl,
                             uint32_t generation) {
  const std::string key = RecordKey(account, uidl, generation);
  const std::string context = "store " + name_ + ": record " + key;
  if (!IsValidAccountName(account)) return Status::InvalidArgument(context + ": bad account name");
  return storage_->Remove(key).WithContext(context);
}

Status Archive::VerifyMessage(const std::string& sha256) { return Fetch(sha256, nullptr, nullptr); }

Status Archive::ReadMessage(const std::string& sha256, ByteSink& sink) {
  return Fetch(sha256, &sink, nullptr);
}

Status Archive::Fetch(const std::string& sha256, ByteSink* out, uint64_t* compressed_bytes,
                      uint64_t limit) {
  const std::string context = "store " + name_ + ": message " + sha256;
  if (!IsValidSha256Hex(sha256)) return Status::InvalidArgument(context + ": not a SHA-256");
  // Loaded for this read, so a cache eviction in between cannot lose it.
  std::shared_ptr<const ZstdDictionary> loaded;
  auto lookup = [&](uint32_t id) {
    return loaded && loaded->id() == id ? loaded : CachedDictionary(id);
  };
  for (int attempt = 0;; ++attempt) {
    VerifyingSink verifier(out, lookup, limit);
    const Status s = storage_->Get(MessageKey(sha256), verifier);
    const bool whole = s.ok() && verifier.missing_dictionary() == 0 &&
                       verifier.corruption().empty() && !verifier.reached_limit();
    const Status finished = whole ? verifier.Finish(sha256) : Status::OK();
    if (const uint32_t id = verifier.missing_dictionary(); id != 0) {
      // Stopped at the frame header: nothing reached `out` yet.
      const std::string needs = context + ": compressed with dictionary " + std::to_string(id);
      if (attempt > 0) return Status::Corruption(needs + ", which could not be kept loaded");
      const Status d = LoadDictionary(id, &loaded);
      if (!d.ok()) return Status::Corruption(needs + ": " + d.message());
      continue;
    }
    // Whatever the backend makes of a sink error, a bad object is Corruption.
    if (!verifier.corruption().empty()) {
      return Status::Corruption(context + ": " + verifier.corruption());
    }
    if (verifier.reached_limit()) return Status::OK();
    POPVAULT_RETURN_IF_ERROR(s.WithContext(context));
    POPVAULT_RETURN_IF_ERROR(finished.WithContext(context));
    if (compressed_bytes != nullptr) *compressed_bytes = verifier.compressed_bytes();
    return Status::OK();
  }
}

Status Archive::ListRecords(const std::string& account,
                            const std::function<bool(const ArchiveRecord&)>& fn) {
  return ListStoredRecords(account, [&](const StoredRecord& stored) { return fn(stored.record); });
}

Status Archive::ListStoredRecords(const std::string& account,
                                  const std::function<bool(const StoredRecord&)>& fn) {
  if (!account.empty() && !IsValidAccountName(account)) {
    return Status::InvalidArgument("store " + name_ + ": bad account name \"" + account + "\"");
  }
  // Keys first, records after: Storage does not promise that its methods may
  // be called from inside a List callback.
  std::vector<std::string> keys;
  const std::string prefix = account.empty() ? "records/" : "records/" + account + "/";
  POPVAULT_RETURN_IF_ERROR(storage_
                               ->List(prefix,
                                      [&](const std::string& key) {
                                        keys.push_back(key);
                                        return true;
                                      })
                               .WithContext("store " + name_ + ": listing " + prefix));
  for (const std::string& key : keys) {
    const std::string context = "store " + name_ + ": record " + key;
    BoundedStringSink json;
    const Status s = storage_->Get(key, json);
    if (s.code() == Status::Code::kNotFound) continue;  // removed since List
    POPVAULT_RETURN_IF_ERROR(s.WithContext(context));
    StoredRecord stored{key, 0, {}};
    const Status parsed = RecordFromJson(json.data(), &stored.record);
    if (!parsed.ok()) return Status::Corruption(context + ": " + parsed.message());
    stored.record.generation = GenerationOfRecordKey(key);
    stored.generation = stored.record.generation;
    const ArchiveRecord& record = stored.record;
    if (RecordKey(record.account, record.uidl, record.generation) != key) {
      return Status::Corruption(context + ": holds the record of account " + record.account +
                                " UIDL " + EncodeUidl(record.uidl));
    }
    if (!fn(stored)) break;
  }
  return Status::OK();
}

// ---- Dictionaries ----

Codec Archive::codec() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Codec{compression_level_, active_};
}

std::shared_ptr<const ZstdDictionary> Archive::CachedDictionary(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_ && active_->id() == id) return active_;
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if ((*it)->id() == id) {
      cache_.splice(cache_.begin(), cache_, it);  // most recently used first
      return cache_.front();
    }
  }
  return nullptr;
}

void Archive::Remember(const std::shared_ptr<const ZstdDictionary>& dictionary) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.remove_if([&](const auto& d) { return d->id() == dictionary->id(); });
  cache_.push_front(dictionary);
  while (cache_.size() > kDictionaryCacheSize) cache_.pop_back();
}

Status Archive::GetDictionary(uint32_t id, std::shared_ptr<const ZstdDictionary>* dictionary) {
  if (auto cached = CachedDictionary(id)) {
    *dictionary = std::move(cached);
    return Status::OK();
  }
  return LoadDictionary(id, dictionary);
}

Status Archive::LoadDictionary(uint32_t id, std::shared_ptr<const ZstdDictionary>* dictionary) {
  const std::string prefix = DictionaryPrefix(id);
  const std::string context = "store " + name_ + ": dictionary " + std::to_string(id);
  std::vector<std::string> keys;
  POPVAULT_RETURN_IF_ERROR(storage_
                               ->List(prefix,
                                      [&](const std::string& key) {
                                        keys.push_back(key);
                                        return true;
                                      })
                               .WithContext(context));
  Status result = Status::NotFound(context + " is missing (no " + prefix + "*.zdict)");
  for (const std::string& key : keys) {
    uint32_t key_id = 0;
    std::string key_sha;
    if (!ParseDictionaryKey(key, &key_id, &key_sha) || key_id != id) continue;
    LimitedSink object(kMaxDictionaryBytes, key);
    const Status s = storage_->Get(key, object);
    if (s.code() == Status::Code::kNotFound) continue;
    if (!s.ok()) {
      result = s.WithContext(context + ": " + key);
      continue;
    }
    const std::string actual = Sha256Hex(object.data);
    if (actual != key_sha) {
      result = Status::Corruption(context + ": " + key + " is damaged (content has SHA-256 " +
                                  actual + ")");
      continue;
    }
    std::shared_ptr<const ZstdDictionary> loaded;
    const Status l = ZstdDictionary::Load(std::move(object.data), &loaded);
    if (!l.ok() || loaded->id() != id) {
      result = Status::Corruption(context + ": " + key + " is not dictionary " +
                                  std::to_string(id) + (l.ok() ? "" : ": " + l.message()));
      continue;
    }
    Remember(loaded);
    *dictionary = std::move(loaded);
    return Status::OK();
  }
  return result;
}

Status Archive::ListDictionaries(const std::function<bool(uint32_t id)>& fn) {
  return storage_
      ->List("dicts/",
             [&](const std::string& key) {
               uint32_t id = 0;
               std::string sha;
               return !ParseDictionaryKey(key, &id, &sha) || fn(id);
             })
      .WithContext("store " + name_ + ": listing dicts/");
}

Status Archive::CheckDictionaryOf(ByteSource& compressed) {
  char header[kMaxFrameHeader];
  size_t have = 0;
  POPVAULT_RETURN_IF_ERROR(compressed.Rewind());
  while (have < sizeof header) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(compressed.Read(header + have, sizeof header - have, &n));
    if (n == 0) break;
    have += n;
  }
  POPVAULT_RETURN_IF_ERROR(compressed.Rewind());
  const uint32_t id = ZSTD_getDictID_fromFrame(header, have);
  const auto* source = dynamic_cast<const CompressedSource*>(&compressed);
  const uint32_t expected = source ? source->codec().dictionary_id() : id;
  if (id != expected) {
    return Status::InvalidArgument("frame names dictionary " + std::to_string(id) + ", not " +
                                   std::to_string(expected));
  }
  if (id == 0) return Status::OK();
  std::shared_ptr<const ZstdDictionary> dictionary;
  const Status s = GetDictionary(id, &dictionary);
  if (!s.ok()) {
    return Status::InvalidArgument("compressed with dictionary " + std::to_string(id) +
                                   ", which this store cannot provide: " + s.message());
  }
  if (source && source->codec().dictionary->sha256() != dictionary->sha256()) {
    return Status::InvalidArgument("compressed with another store's dictionary " +
                                   std::to_string(id) + " (" + dictionary->key() + " differs)");
  }
  return Status::OK();
}

Status Archive::AddDictionary(std::string bytes, bool activate, uint32_t* id) {
  std::string context = "store " + name_ + ": dictionary";
  std::shared_ptr<const ZstdDictionary> dict;
  POPVAULT_RETURN_IF_ERROR(ZstdDictionary::Load(std::move(bytes), &dict).WithContext(context));
  const std::string original_sha = dict->sha256();
  // Find the ID: its own, unless a different dictionary holds that one.
  bool present = false;
  for (unsigned attempt = 0;; ++attempt) {
    bool taken = false;
    POPVAULT_RETURN_IF_ERROR(storage_
                                 ->List(DictionaryPrefix(dict->id()),
                                        [&](const std::string& key) {
                                          uint32_t key_id = 0;
                                          std::string sha;
                                          if (!ParseDictionaryKey(key, &key_id, &sha)) return true;
                                          if (key_id != dict->id()) return true;
                                          (sha == dict->sha256() ? present : taken) = true;
                                          return true;
                                        })
                                 .WithContext(context));
    if (present || !taken) break;
    if (attempt >= 64) {
      return Status::IOError(context + ": no free dictionary ID after 64 tries");
    }
    std::string retagged =
        WithDictionaryId(dict->bytes(), AlternativeDictionaryId(original_sha, attempt));
    POPVAULT_RETURN_IF_ERROR(ZstdDictionary::Load(std::move(retagged), &dict).WithContext(context));
  }
  context += " " + std::to_string(dict->id());
  POPVAULT_RETURN_IF_ERROR(SelfTest(*dict, compression_level_).WithContext(context));
  const std::string key = dict->key();
  bool intact = false;
  if (present) {
    LimitedSink stored(kMaxDictionaryBytes, key);
    const Status s = storage_->Get(key, stored);
    if (!s.ok() && s.code() != Status::Code::kNotFound && s.code() != Status::Code::kCorruption) {
      return s.WithContext(context);
    }
    intact = s.ok() && stored.data == dict->bytes();
  }
  if (!intact) {
    StringSource source(dict->bytes());
    POPVAULT_RETURN_IF_ERROR(storage_->Put(key, source).WithContext(context + ": " + key));
  }
  // Durable and intact before anything refers to it.
  POPVAULT_RETURN_IF_ERROR(storage_->Sync().WithContext(context + ": sync"));
  LimitedSink back(kMaxDictionaryBytes, key);
  POPVAULT_RETURN_IF_ERROR(storage_->Get(key, back).WithContext(context + ": reading back"));
  if (back.data != dict->bytes()) {
    return Status::Corruption(context + ": " + key + " reads back different bytes");
  }
  Remember(dict);
  if (activate) {
    Poco::JSON::Object active;
    active.set("dict_id", static_cast<uint64_t>(dict->id()));
    active.set("sha256", dict->sha256());
    std::ostringstream json;
    active.stringify(json);
    StringSource source(json.str() + "\n");
    POPVAULT_RETURN_IF_ERROR(
        storage_->Put(kActiveDictionaryKey, source).WithContext(context + ": activating"));
    POPVAULT_RETURN_IF_ERROR(storage_->Sync().WithContext(context + ": sync"));
    std::lock_guard<std::mutex> lock(mu_);
    active_ = dict;
  }
  *id = dict->id();
  return Status::OK();
}

Status Archive::UseActiveDictionary() {
  const std::string context = "store " + name_ + ": " + kActiveDictionaryKey;
  LimitedSink json(64 << 10, kActiveDictionaryKey);
  const Status s = storage_->Get(kActiveDictionaryKey, json);
  if (s.code() == Status::Code::kNotFound) return Status::OK();  // none: plain frames
  POPVAULT_RETURN_IF_ERROR(s.WithContext(context));
  uint64_t id = 0;
  std::string sha;
  try {
    Poco::JSON::Parser parser;
    const auto object = parser.parse(json.data).extract<Poco::JSON::Object::Ptr>();
    if (!object || !object->has("dict_id") || !object->has("sha256")) {
      return Status::Corruption(context + ": dict_id or sha256 missing");
    }
    id = object->getValue<uint64_t>("dict_id");
    sha = object->getValue<std::string>("sha256");
  } catch (const Poco::Exception& e) {
    return Status::Corruption(context + ": " + e.displayText());
  } catch (const std::exception& e) {
    return Status::Corruption(context + ": " + e.what());
  }
  if (id == 0 || id > UINT32_MAX || !IsValidSha256Hex(sha)) {
    return Status::Corruption(context + ": bad dict_id or sha256");
  }
  std::shared_ptr<const ZstdDictionary> dict;
  POPVAULT_RETURN_IF_ERROR(GetDictionary(static_cast<uint32_t>(id), &dict).WithContext(context));
  if (dict->sha256() != sha) {
    return Status::Corruption(context + ": names " + DictionaryKey(dict->id(), sha) +
                              ", the store has " + dict->key());
  }
  POPVAULT_RETURN_IF_ERROR(
      SelfTest(*dict, compression_level_)
          .WithContext("store " + name_ + ": dictionary " + std::to_string(dict->id())));
  std::lock_guard<std::mutex> lock(mu_);
  active_ = std::move(dict);
  return Status::OK();
}

Status Archive::EnableDictionaries(size_t train_after) {
  if (train_after == 0) return Status::OK();
  train_after_ = train_after;
  return UseActiveDictionary();
}

Status Archive::MaybeTrainDictionary(uint32_t* id) {
  *id = 0;
  if (train_after_ == 0 || codec().dictionary != nullptr) return Status::OK();
  std::unique_lock<std::mutex> training(train_mu_, std::try_to_lock);
  if (!training.owns_lock()) return Status::OK();  // another pass is at it
  std::vector<std::string> samples;
  POPVAULT_RETURN_IF_ERROR(CollectSamples(train_after_, 1000, 8 << 10, &samples));
  if (samples.empty()) return Status::OK();  // not enough messages yet
  return TrainAndActivateDictionary(samples, DictionaryTrainingOptions(), id);
}

Status Archive::TrainAndActivateDictionary(const std::vector<std::string>& samples,
                                           const DictionaryTrainingOptions& options, uint32_t* id) {
  std::string dictionary;
  POPVAULT_RETURN_IF_ERROR(
      TrainDictionary(samples, options, &dictionary).WithContext("store " + name_));
  return AddDictionary(std::move(dictionary), /*activate=*/true, id);
}

Status Archive::CollectSamples(size_t min_messages, size_t max_samples, size_t sample_bytes,
                               std::vector<std::string>* samples) {
  if (sample_bytes == 0) {
    return Status::InvalidArgument("store " + name_ + ": samples of 0 bytes");
  }
  std::vector<std::string> hashes;
  size_t listed = 0;
  constexpr size_t kPrefix = sizeof("messages/ab/") - 1;
  POPVAULT_RETURN_IF_ERROR(storage_
                               ->List("messages/",
                                      [&](const std::string& key) {
                                        if (key.size() < kPrefix + 64) return true;
                                        const std::string sha = key.substr(kPrefix, 64);
                                        if (!IsValidSha256Hex(sha) || key != MessageKey(sha)) {
                                          return true;
                                        }
                                        ++listed;
                                        if (hashes.size() < max_samples) hashes.push_back(sha);
                                        return listed < std::max(min_messages, max_samples);
                                      })
                               .WithContext("store " + name_ + ": listing messages/"));
  if (listed < min_messages) return Status::OK();
  for (const std::string& sha : hashes) {
    StringSink sample;
    const Status s = Fetch(sha, &sample, nullptr, sample_bytes);
    if (s.code() == Status::Code::kCorruption || s.code() == Status::Code::kNotFound) continue;
    POPVAULT_RETURN_IF_ERROR(s);
    samples->push_back(std::move(sample.bytes));
  }
  return Status::OK();
}

}  // namespace popvault
