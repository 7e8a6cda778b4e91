// Archive: one configured store as the sync engine sees it: a plain Storage
// plus the codec layers (zstd, SHA-256 verification) and the key layout.
//
// Key layout (documented in schemas/README.md):
//   messages/<sha256[0:2]>/<sha256>.zst     one zstd frame of the raw message
//   records/<account>/<key-safe uidl>.json  ArchiveRecord JSON (generation 0)
//   records/<account>/<key-safe uidl>.<N>.json  the same UIDL's generation N
//   dicts/<dict id>-<sha256>.zdict          a zstd dictionary (see below)
//   dicts/active.json                       which one new messages use
// The key-safe UIDL escapes every byte outside [A-Za-z0-9-] as _XX (uppercase
// hex), since EncodeUidl's output may hold '/', '%' and other bytes storage
// keys do not allow; if that is longer than 255 bytes it is "_H" + the SHA-256
// hex of the UIDL instead. The record itself carries the exact UIDL.
// Messages are content-addressed: the same bytes from two accounts, or twice
// from one, are stored once.
//
// Dictionaries (off unless the caller enables them): a message frame may have
// been compressed with a zstd dictionary; its header names the dictionary ID
// (0: none, the plain frames every older object is). Reading looks the
// dictionary up by that ID in the same store, checks the object's SHA-256
// against its key, and keeps a few in memory. A dictionary is written, synced
// and read back before any message can use it, and never removed.
//
// Durability follows Storage: nothing is durable before Sync() returns OK.
// Thread-safety: as the underlying Storage (all methods may run concurrently).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "archive/dictionary.h"
#include "archive/record.h"
#include "popvault/byte_stream.h"
#include "popvault/storage.h"

namespace popvault {

class Archive {
 public:
  Archive(std::string store_name, std::unique_ptr<Storage> storage, int compression_level);

  const std::string& name() const { return name_; }

  // Stores the compressed object of the message with this SHA-256 unless the
  // store already has an intact one (then it only reads that one back to check
  // it; a damaged or undecodable copy is replaced). Sets *stored_size to the
  // size of the object in the store, and *reused (if given) to whether an
  // intact copy was already there (a dedup hit: nothing written).
  // A frame that names a dictionary is refused (InvalidArgument) unless this
  // store holds that dictionary intact (and, for a MessageWriter's
  // CompressedSource, the very dictionary it was compressed with).
  Status PutMessage(const std::string& sha256, ByteSource& compressed, uint64_t* stored_size,
                    bool* reused = nullptr);

  // From now on PutMessage writes every message again even where an intact
  // copy is there, instead of reusing it. For a store reopened after a failed
  // Sync: what an earlier instance wrote may read back intact from the page
  // cache and still not be on disk (Linux marks pages clean after a failed
  // fsync), and only what this instance writes is made durable by its Sync.
  void RewriteExisting() { rewrite_existing_ = true; }
  bool rewrites_existing() const { return rewrite_existing_; }

  // Writes (or overwrites) the record of record.account / record.uidl /
  // record.generation.
  // InvalidArgument if the account name or sha256 is malformed.
  Status PutRecord(const ArchiveRecord& record);

  // Reads the stored object back, decompresses it and compares its SHA-256.
  // NotFound if missing, Corruption on any mismatch or undecodable data.
  Status VerifyMessage(const std::string& sha256);

  // Streams the original message bytes into `sink`. The SHA-256 is checked at
  // the end: on Corruption the sink has already received bad bytes.
  Status ReadMessage(const std::string& sha256, ByteSink& sink);

  // Calls fn for each record of `account` (all accounts if empty), in key
  // order, until fn returns false: every generation, each record's read from
  // its key (see StoredRecord). A record that does not parse, or that sits
  // under another record's key, is Corruption naming the key.
  Status ListRecords(const std::string& account,
                     const std::function<bool(const ArchiveRecord&)>& fn);

  // A record as the store holds it, under RecordKey(account, uidl,
  // generation): generation 0 is the first message under its UIDL, N >= 1
  // ("records/<account>/<key-safe uidl>.<N>.json", N decimal, no leading
  // zero) a later one under a UIDL the server reused. The ledger entry stands
  // for the generation it names (its record.generation); the others are
  // superseded but kept. The key-safe form holds no '.', so the key parses
  // either way.
  struct StoredRecord {
    std::string key;
    uint32_t generation = 0;
    ArchiveRecord record;
  };

  // As ListRecords, with each record's key and generation.
  Status ListStoredRecords(const std::string& account,
                           const std::function<bool(const StoredRecord&)>& fn);

  // Calls fn(sha256) for every stored message whose SHA-256 (lowercase hex)
  // starts with `prefix`, which must be at least 2 hex digits.
  Status FindMessages(const std::string& prefix,
                      const std::function<bool(const std::string& sha256)>& fn);

  // Removes the object of the message with this SHA-256, which every record
  // with that sha256 (any account, any UIDL) shares: the caller must know that
  // none still needs it. OK if there was none; InvalidArgument if sha256 is
  // malformed. Durable after Sync().
  Status RemoveMessage(const std::string& sha256);

  // Removes the record of (account, uidl, generation), leaving the message
  // object. OK if there was none; InvalidArgument if the account name is
  // malformed. Durable after Sync().
  Status RemoveRecord(const std::string& account, const std::string& uidl, uint32_t generation = 0);

  Status Sync() { return storage_->Sync(); }

  // ---- Dictionaries ----

  // dictionary = auto: loads the active dictionary (UseActiveDictionary) and
  // lets MaybeTrainDictionary train one once the store holds `train_after`
  // messages. 0 (dictionary = off) does nothing: new messages stay plain
  // frames (frames that name a dictionary are still read). An error loading
  // the active dictionary leaves compression plain and names it.
  Status EnableDictionaries(size_t train_after);

  // After a pass that stored mail: if dictionaries are enabled and none is
  // active, trains one from up to 1000 stored messages (first 8 KiB each)
  // once the store holds enough, and activates it. *id is its ID, or 0 when
  // nothing was trained. On error nothing changes.
  Status MaybeTrainDictionary(uint32_t* id);

  // How new messages for this store are to be compressed (MessageWriter):
  // the level, plus the active dictionary once UseActiveDictionary or
  // AddDictionary(activate) set one. Plain until then.
  Codec codec() const;

  // Loads the store's active dictionary (dicts/active.json and the object it
  // names, verified) and makes codec() use it. OK and codec() stays plain if
  // the store has none (NotFound is not an error here); on any other error
  // codec() stays as it was and the error names the dictionary.
  Status UseActiveDictionary();

  // Stores a zstd-format dictionary (e.g. from TrainDictionary or
  // `zstd --train`): dicts/<id>-<sha256>.zdict, then Sync, then reads it back
  // and compares. If another dictionary already uses its ID, it is stored
  // under an alternative ID instead (WithDictionaryId). Adding one that is
  // already there only checks (and repairs) the stored copy. With `activate`,
  // it then becomes the active one (dicts/active.json, synced) and codec()
  // uses it. Sets *id to the ID it is stored under.
  Status AddDictionary(std::string dictionary, bool activate, uint32_t* id);

  // TrainDictionary(samples, options) then AddDictionary(activate = true).
  // On any failure (e.g. too few samples: InvalidArgument) nothing is written
  // and codec() is unchanged, so compression stays as it was.
  Status TrainAndActivateDictionary(const std::vector<std::string>& samples,
                                    const DictionaryTrainingOptions& options, uint32_t* id);

  // Training material from the store itself: the first `sample_bytes` of up
  // to `max_samples` stored messages, in key order (by SHA-256: a fixed,
  // pseudo-random choice). Objects that fail to decode are skipped. If the
  // store holds fewer than `min_messages` messages, reads nothing (a cheap
  // listing: call it after every pass until it yields samples). Memory: at
  // most max_samples * sample_bytes. InvalidArgument if sample_bytes is 0.
  Status CollectSamples(size_t min_messages, size_t max_samples, size_t sample_bytes,
                        std::vector<std::string>* samples);

  // The dictionary with this ID, from the cache or the store (verified).
  // NotFound if the store has none; Corruption if its object is damaged.
  Status GetDictionary(uint32_t id, std::shared_ptr<const ZstdDictionary>* dictionary);

  // Calls fn(id) for every dictionary object in the store, in key order.
  Status ListDictionaries(const std::function<bool(uint32_t id)>& fn);

  static constexpr const char* kActiveDictionaryKey = "dicts/active.json";
  // Dictionaries kept in memory besides the active one.
  static constexpr size_t kDictionaryCacheSize = 8;

  static std::string MessageKey(const std::string& sha256);
  static std::string RecordKey(const std::string& account, const std::string& uidl,
                               uint32_t generation = 0);

 private:
  // Streams the object of `sha256` through decompression and the SHA-256
  // check into `out` (if any), loading the dictionary its frame names. With
  // `limit`, stops (OK, unchecked) after that many bytes of output.
  Status Fetch(const std::string& sha256, ByteSink* out, uint64_t* compressed_bytes,
               uint64_t limit = 0);
  std::shared_ptr<const ZstdDictionary> CachedDictionary(uint32_t id);
  void Remember(const std::shared_ptr<const ZstdDictionary>& dictionary);
  Status LoadDictionary(uint32_t id, std::shared_ptr<const ZstdDictionary>* dictionary);
  Status CheckDictionaryOf(ByteSource& compressed);

  std::atomic<bool> rewrite_existing_{false};
  std::string name_;
  std::unique_ptr<Storage> storage_;
  int compression_level_;
  std::atomic<size_t> train_after_{0};  // 0: dictionaries off
  std::mutex train_mu_;                 // one training at a time; others skip

  mutable std::mutex mu_;  // guards the members below
  std::shared_ptr<const ZstdDictionary> active_;
  // Verified dictionaries, most recently used first (bounded).
  std::list<std::shared_ptr<const ZstdDictionary>> cache_;
};

}  // namespace popvault
