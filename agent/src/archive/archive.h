// Archive: one configured store as the sync engine sees it: a plain Storage
// plus the codec layers (zstd, SHA-256 verification) and the key layout.
//
// Key layout (documented in schemas/README.md):
//   messages/<sha256[0:2]>/<sha256>.zst     one zstd frame of the raw message
//   records/<account>/<key-safe uidl>.json  ArchiveRecord JSON
// The key-safe UIDL escapes every byte outside [A-Za-z0-9-] as _XX (uppercase
// hex), since EncodeUidl's output may hold '/', '%' and other bytes storage
// keys do not allow; if that is longer than 255 bytes it is "_H" + the SHA-256
// hex of the UIDL instead. The record itself carries the exact UIDL.
// Messages are content-addressed: the same bytes from two accounts, or twice
// from one, are stored once.
//
// Durability follows Storage: nothing is durable before Sync() returns OK.
// Thread-safety: as the underlying Storage (all methods may run concurrently).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "archive/record.h"
#include "popvault/byte_stream.h"
#include "popvault/storage.h"

namespace popvault {

class Archive {
 public:
  Archive(std::string store_name, std::unique_ptr<Storage> storage, int compression_level);

  const std::string& name() const { return name_; }
  int compression_level() const { return compression_level_; }

  // Stores the compressed object of the message with this SHA-256 unless the
  // store already has an intact one (then it only reads that one back to check
  // it; a damaged or undecodable copy is replaced). Sets *stored_size to the
  // size of the object in the store, and *reused (if given) to whether an
  // intact copy was already there (a dedup hit: nothing written).
  Status PutMessage(const std::string& sha256, ByteSource& compressed, uint64_t* stored_size,
                    bool* reused = nullptr);

  // Writes (or overwrites) the record of record.account / record.uidl.
  // InvalidArgument if the account name or sha256 is malformed.
  Status PutRecord(const ArchiveRecord& record);

  // Reads the stored object back, decompresses it and compares its SHA-256.
  // NotFound if missing, Corruption on any mismatch or undecodable data.
  Status VerifyMessage(const std::string& sha256);

  // Streams the original message bytes into `sink`. The SHA-256 is checked at
  // the end: on Corruption the sink has already received bad bytes.
  Status ReadMessage(const std::string& sha256, ByteSink& sink);

  // Calls fn for each record of `account` (all accounts if empty), in key
  // order, until fn returns false. A record that does not parse, or that sits
  // under another record's key, is Corruption naming the key.
  Status ListRecords(const std::string& account,
                     const std::function<bool(const ArchiveRecord&)>& fn);

  // Calls fn(sha256) for every stored message whose SHA-256 (lowercase hex)
  // starts with `prefix`, which must be at least 2 hex digits.
  Status FindMessages(const std::string& prefix,
                      const std::function<bool(const std::string& sha256)>& fn);

  // Removes the object of the message with this SHA-256, which every record
  // with that sha256 (any account, any UIDL) shares: the caller must know that
  // none still needs it. OK if there was none; InvalidArgument if sha256 is
  // malformed. Durable after Sync().
  Status RemoveMessage(const std::string& sha256);

  // Removes the record of (account, uidl), leaving the message object. OK if
  // there was none; InvalidArgument if the account name is malformed. Durable
  // after Sync().
  Status RemoveRecord(const std::string& account, const std::string& uidl);

  Status Sync() { return storage_->Sync(); }

  static std::string MessageKey(const std::string& sha256);
  static std::string RecordKey(const std::string& account, const std::string& uidl);

 private:
  std::string name_;
  std::unique_ptr<Storage> storage_;
  int compression_level_;
};

}  // namespace popvault
