#include "archive/archive.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <zstd.h>

#include <cstring>
#include <vector>

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
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(uidl);
  return "_H" + Poco::DigestEngine::digestToHex(sha.digest());
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

// Decompresses one stored object as it streams in, hashes the result and
// forwards it to `out` (if any). Everything but exactly one complete zstd
// frame is a corruption.
class VerifyingSink : public ByteSink {
 public:
  explicit VerifyingSink(ByteSink* out)
      : out_(out), dctx_(ZSTD_createDCtx()), buffer_(ZSTD_DStreamOutSize()) {}
  ~VerifyingSink() override { ZSTD_freeDCtx(dctx_); }
  VerifyingSink(const VerifyingSink&) = delete;
  VerifyingSink& operator=(const VerifyingSink&) = delete;

  Status Append(const char* data, size_t n) override {
    compressed_bytes_ += n;
    if (!dctx_) return Fail("cannot create a zstd decompression context");
    ZSTD_inBuffer in{data, n, 0};
    while (in.pos < in.size) {
      if (frame_done_) return Fail("data after the end of the zstd frame");
      ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
      const size_t r = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(r)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(r));
      frame_done_ = r == 0;
      POPVAULT_RETURN_IF_ERROR(Emit(out.pos));
      // A full buffer may hide more output for the same input: drain it.
      while (out.pos == out.size && !frame_done_) {
        out.pos = 0;
        const size_t r2 = ZSTD_decompressStream(dctx_, &out, &in);
        if (ZSTD_isError(r2)) return Fail(std::string("zstd: ") + ZSTD_getErrorName(r2));
        frame_done_ = r2 == 0;
        POPVAULT_RETURN_IF_ERROR(Emit(out.pos));
      }
    }
    return Status::OK();
  }

  // After the whole object went through Append: checks the frame ended and
  // the content hashes to `sha256`.
  Status Finish(const std::string& sha256) {
    if (!corruption_.empty()) return Status::Corruption(corruption_);
    if (!frame_done_) return Fail("truncated zstd frame");
    const std::string actual = Poco::DigestEngine::digestToHex(sha_.digest());
    if (actual != sha256) return Fail("content has SHA-256 " + actual);
    return Status::OK();
  }

  // Set when Append failed because the object is bad (not because `out` did).
  const std::string& corruption() const { return corruption_; }
  uint64_t compressed_bytes() const { return compressed_bytes_; }

 private:
  Status Emit(size_t n) {
    if (n == 0) return Status::OK();
    sha_.update(buffer_.data(), n);
    return out_ ? out_->Append(buffer_.data(), n) : Status::OK();
  }
  Status Fail(std::string what) {
    corruption_ = std::move(what);
    return Status::Corruption(corruption_);
  }

  ByteSink* out_;
  ZSTD_DCtx* dctx_;
  std::vector<char> buffer_;
  Poco::SHA2Engine sha_{Poco::SHA2Engine::SHA_256};
  bool frame_done_ = false;
  uint64_t compressed_bytes_ = 0;
  std::string corruption_;
};

// Streams the object of `sha256` through `verifier` and checks it.
Status FetchVerified(Storage& storage, const std::string& store, const std::string& sha256,
                     VerifyingSink& verifier) {
  const std::string context = "store " + store + ": message " + sha256;
  if (!IsValidSha256Hex(sha256)) return Status::InvalidArgument(context + ": not a SHA-256");
  const Status s = storage.Get(Archive::MessageKey(sha256), verifier);
  // Whatever the backend makes of a sink error, a bad object is Corruption.
  if (!verifier.corruption().empty()) {
    return Status::Corruption(context + ": " + verifier.corruption());
  }
  POPVAULT_RETURN_IF_ERROR(s.WithContext(context));
  return verifier.Finish(sha256).WithContext(context);
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

std::string Archive::RecordKey(const std::string& account, const std::string& uidl) {
  return "records/" + account + "/" + KeySafeUidl(uidl) + ".json";
}

Status Archive::PutMessage(const std::string& sha256, ByteSource& compressed, uint64_t* stored_size,
                           bool* reused) {
  if (reused != nullptr) *reused = false;
  const std::string context = "store " + name_ + ": message " + sha256;
  if (!IsValidSha256Hex(sha256)) return Status::InvalidArgument(context + ": not a SHA-256");
  const std::string key = MessageKey(sha256);
  bool exists = false;
  POPVAULT_RETURN_IF_ERROR(storage_->Exists(key, &exists).WithContext(context));
  if (exists) {
    VerifyingSink verifier(nullptr);
    const Status s = FetchVerified(*storage_, name_, sha256, verifier);
    if (s.ok()) {
      *stored_size = verifier.compressed_bytes();
      if (reused != nullptr) *reused = true;
      return Status::OK();
    }
    // A damaged copy is replaced (below); one that vanished meanwhile too.
    if (s.code() != Status::Code::kCorruption && s.code() != Status::Code::kNotFound) return s;
  }
  POPVAULT_RETURN_IF_ERROR(storage_->Put(key, compressed).WithContext(context));
  *stored_size = compressed.Size();
  return Status::OK();
}

Status Archive::PutRecord(const ArchiveRecord& record) {
  const std::string key = RecordKey(record.account, record.uidl);
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

Status Archive::RemoveRecord(const std::string& account, const std::string& uidl) {
  const std::string key = RecordKey(account, uidl);
  const std::string context = "store " + name_ + ": record " + key;
  if (!IsValidAccountName(account)) return Status::InvalidArgument(context + ": bad account name");
  return storage_->Remove(key).WithContext(context);
}

Status Archive::VerifyMessage(const std::string& sha256) {
  VerifyingSink verifier(nullptr);
  return FetchVerified(*storage_, name_, sha256, verifier);
}

Status Archive::ReadMessage(const std::string& sha256, ByteSink& sink) {
  VerifyingSink verifier(&sink);
  return FetchVerified(*storage_, name_, sha256, verifier);
}

Status Archive::ListRecords(const std::string& account,
                            const std::function<bool(const ArchiveRecord&)>& fn) {
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
    ArchiveRecord record;
    const Status parsed = RecordFromJson(json.data(), &record);
    if (!parsed.ok()) return Status::Corruption(context + ": " + parsed.message());
    if (RecordKey(record.account, record.uidl) != key) {
      return Status::Corruption(context + ": holds the record of account " + record.account +
                                " UIDL " + EncodeUidl(record.uidl));
    }
    if (!fn(record)) break;
  }
  return Status::OK();
}

}  // namespace popvault
