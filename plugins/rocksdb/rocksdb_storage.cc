#include "rocksdb_storage.h"

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "rocksdb_common.h"

namespace popvault {
namespace {

// Database layout:
//   "!format"                            kFormat
//   "m/" + key                           manifest: version, generation, size, chunk count
//   "c/" + key + '\0' + gen + index      chunk (gen and index 8-byte big-endian)
// A Put writes its chunks under a generation no manifest points to, then
// switches the manifest and deletes the old generation's chunks in one batch.
// Storage keys never contain '\0', so the chunks of one key are contiguous and
// separate from every other key's.
constexpr size_t kChunkSize = 1 << 20;
// Purge reclaims the space of removed objects by rewriting the oldest blob
// files, as long as at least this share of what is rewritten is garbage.
constexpr double kReclaimGarbageShare = 0.5;
constexpr size_t kMaxKeySize = 512;
constexpr char kFormatKey[] = "!format";
constexpr char kFormat[] = "popvault rocksdb storage 1";
constexpr char kManifestPrefix[] = "m/";
constexpr char kManifestVersion = 1;
constexpr size_t kManifestBytes = 1 + 3 * 8;

struct Manifest {
  uint64_t generation = 0;
  uint64_t size = 0;
  uint64_t chunks = 0;
};

void AppendBigEndian(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t ReadBigEndian(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

std::string ManifestKey(const std::string& key) { return kManifestPrefix + key; }

std::string ChunkKey(const std::string& key, uint64_t generation, uint64_t index) {
  std::string k = "c/" + key;
  k.push_back('\0');
  AppendBigEndian(generation, &k);
  AppendBigEndian(index, &k);
  return k;
}

std::string EncodeManifest(const Manifest& m) {
  std::string v(1, kManifestVersion);
  AppendBigEndian(m.generation, &v);
  AppendBigEndian(m.size, &v);
  AppendBigEndian(m.chunks, &v);
  return v;
}

bool DecodeManifest(const rocksdb::Slice& v, Manifest* m) {
  if (v.size() != kManifestBytes || v[0] != kManifestVersion) return false;
  m->generation = ReadBigEndian(v.data() + 1);
  m->size = ReadBigEndian(v.data() + 9);
  m->chunks = ReadBigEndian(v.data() + 17);
  // No chunk is empty (Get checks the sizes add up).
  return m->chunks <= m->size && (m->chunks == 0) == (m->size == 0);
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

Status CheckKey(const std::string& key) {
  bool ok = !key.empty() && key.size() <= kMaxKeySize && key.front() != '/' && key.back() != '/' &&
            key.find("..") == std::string::npos && key.find("//") == std::string::npos;
  for (char c : key) ok = ok && IsKeyChar(c);
  if (!ok) return Status::InvalidArgument("not a valid storage key: \"" + key + "\"");
  return Status::OK();
}

Status CheckPrefix(const std::string& prefix) {
  bool ok = prefix.size() <= kMaxKeySize;
  for (char c : prefix) ok = ok && IsKeyChar(c);
  if (!ok) return Status::InvalidArgument("not a valid storage key prefix: \"" + prefix + "\"");
  return Status::OK();
}

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  const std::string message = context + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(message);
  if (s.IsNotFound()) return Status::NotFound(message);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(message);
  return Status::IOError(message);
}

// Reads up to `cap` bytes from `src` into `buf` (Read may return less).
Status Fill(ByteSource& src, std::string* buf, size_t cap) {
  buf->resize(cap);
  size_t filled = 0;
  while (filled < cap) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(src.Read(buf->data() + filled, cap - filled, &n));
    if (n == 0) break;
    filled += n;
  }
  buf->resize(filled);
  return Status::OK();
}

// Serializes Put and Remove per key: both read the manifest and then replace
// it, and two interleaved Puts would delete each other's chunks.
class KeyLocks {
 public:
  class Guard {
   public:
    Guard(KeyLocks* locks, std::string key) : locks_(locks), key_(std::move(key)) {
      std::unique_lock<std::mutex> lock(locks_->mu_);
      locks_->cv_.wait(lock, [&] { return !locks_->held_.count(key_); });
      locks_->held_.insert(key_);
    }
    ~Guard() {
      {
        std::lock_guard<std::mutex> lock(locks_->mu_);
        locks_->held_.erase(key_);
      }
      locks_->cv_.notify_all();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    KeyLocks* locks_;
    std::string key_;
  };

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

class Snapshot {
 public:
  explicit Snapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~Snapshot() { db_->ReleaseSnapshot(snapshot_); }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

class RocksDbStorage : public Storage {
 public:
  RocksDbStorage(std::unique_ptr<rocksdb::DB> db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}
  ~RocksDbStorage() override {
    rocksdb_common::WaitForBackgroundWork(*db_, std::chrono::seconds(30));
  }

  Status Put(const std::string& key, ByteSource& src) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    KeyLocks::Guard guard(&locks_, key);
    Manifest old;
    bool had_old = false;
    POPVAULT_RETURN_IF_ERROR(ReadManifest(rocksdb::ReadOptions(), key, &old, &had_old));
    const uint64_t generation = had_old ? old.generation + 1 : 1;
    // Puts skip RocksDB's write-ahead log: Sync makes them durable by
    // flushing the memtables, so an object's bytes are written and checksummed
    // once (into a table or blob file), not twice (the WAL, then that file at
    // the flush): about a sixth of a first archive's CPU. The cost is a flush,
    // a small table, per Sync that follows Puts: one per group commit.
    rocksdb::WriteOptions write;
    write.disableWAL = true;
    uint64_t chunks = 0;
    const Status s = WriteObject(key, generation, old, had_old, write, src, &chunks);
    if (!s.ok()) DeleteChunks(key, generation, chunks);
    return s;
  }

  Status Get(const std::string& key, ByteSink& sink) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    // A concurrent Put or Remove must not delete chunks under this reader.
    Snapshot snapshot(db_.get());
    rocksdb::ReadOptions options;
    options.snapshot = snapshot.get();
    Manifest m;
    bool found = false;
    POPVAULT_RETURN_IF_ERROR(ReadManifest(options, key, &m, &found));
    if (!found) return Status::NotFound(Describe(key) + ": no such object");
    uint64_t total = 0;
    rocksdb::PinnableSlice chunk;
    for (uint64_t i = 0; i < m.chunks; ++i) {
      chunk.Reset();
      const rocksdb::Status s =
          db_->Get(options, db_->DefaultColumnFamily(), ChunkKey(key, m.generation, i), &chunk);
      if (s.IsNotFound()) {
        return Status::Corruption(Describe(key) + ": chunk " + std::to_string(i) + " is missing");
      }
      POPVAULT_RETURN_IF_ERROR(FromRocks(s, Describe(key)));
      total += chunk.size();
      if (total > m.size || chunk.size() == 0) {
        return Status::Corruption(Describe(key) + ": chunk sizes disagree with the manifest");
      }
      POPVAULT_RETURN_IF_ERROR(sink.Append(chunk.data(), chunk.size()));
    }
    if (total != m.size) {
      return Status::Corruption(Describe(key) + ": chunk sizes disagree with the manifest");
    }
    return Status::OK();
  }

  Status Exists(const std::string& key, bool* exists) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    Manifest m;
    return ReadManifest(rocksdb::ReadOptions(), key, &m, exists);
  }

  Status Remove(const std::string& key) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    KeyLocks::Guard guard(&locks_, key);
    Manifest m;
    bool found = false;
    POPVAULT_RETURN_IF_ERROR(ReadManifest(rocksdb::ReadOptions(), key, &m, &found));
    if (!found) return Status::OK();
    rocksdb::WriteBatch batch;
    POPVAULT_RETURN_IF_ERROR(FromRocks(batch.Delete(ManifestKey(key)), Describe(key)));
    POPVAULT_RETURN_IF_ERROR(AddChunkDeletes(key, m.generation, 0, m.chunks, &batch));
    POPVAULT_RETURN_IF_ERROR(
        FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "removing " + Describe(key)));
    removed_ = true;
    return Status::OK();
  }

  Status List(const std::string& prefix,
              const std::function<bool(const std::string& key)>& fn) override {
    POPVAULT_RETURN_IF_ERROR(CheckPrefix(prefix));
    const std::string start = ManifestKey(prefix);
    // Key characters are ASCII below 0x7F, so bumping the last byte of
    // "m/" + prefix gives the first key past every match.
    std::string limit = start;
    ++limit.back();
    const rocksdb::Slice limit_slice(limit);
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &limit_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
    const size_t skip = sizeof kManifestPrefix - 1;
    for (it->Seek(start); it->Valid(); it->Next()) {
      if (!fn(it->key().ToString().substr(skip))) return Status::OK();
    }
    return FromRocks(it->status(), "listing \"" + prefix + "\" in store " + path_);
  }

  // Unlogged objects are durable once the memtables holding them are flushed
  // (RocksDB syncs the new table and blob files, the directory and its
  // MANIFEST); logged writes once the WAL is synced. Always flushing (a no-op
  // on empty memtables) also covers what another thread's Put made visible
  // before returning: a store shared by accounts may see the object of
  // another account's Put, which has not returned yet, and count on it.
  Status Sync() override {
    POPVAULT_RETURN_IF_ERROR(
        FromRocks(db_->Flush(rocksdb::FlushOptions()), "flushing store " + path_));
    POPVAULT_RETURN_IF_ERROR(FromRocks(db_->SyncWAL(), "syncing store " + path_));
    if (removed_.exchange(false)) return ReclaimRemoved();
    return Status::OK();
  }

 private:
  // Blob garbage collection is off (see OpenRocksDbStorage), so the space of
  // removed objects comes back here, after `popvault purge`: a compaction
  // drops the removed keys and counts the garbage they leave in blob files,
  // then a second one rewrites the longest run of oldest blob files that is
  // at least kReclaimGarbageShare garbage, so no more is copied than freed.
  Status ReclaimRemoved() {
    rocksdb::CompactRangeOptions drop;
    drop.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    POPVAULT_RETURN_IF_ERROR(FromRocks(db_->CompactRange(drop, nullptr, nullptr),
                                       "compacting store " + path_ + " after removals"));
    rocksdb::ColumnFamilyMetaData meta;
    db_->GetColumnFamilyMetaData(&meta);
    std::vector<rocksdb::BlobMetaData>& files = meta.blob_files;
    std::sort(files.begin(), files.end(), [](const auto& x, const auto& y) {
      return x.blob_file_number < y.blob_file_number;  // oldest first
    });
    size_t run = 0;
    uint64_t garbage = 0, total = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      garbage += files[i].garbage_blob_bytes;
      total += files[i].total_blob_bytes;
      if (garbage > 0 && garbage >= kReclaimGarbageShare * total) run = i + 1;
    }
    if (run == 0) return Status::OK();
    rocksdb::CompactRangeOptions collect;
    collect.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    collect.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
    // RocksDB collects the oldest cutoff * file-count files: aim between
    // run and run + 1.
    collect.blob_garbage_collection_age_cutoff =
        std::min(1.0, (static_cast<double>(run) + 0.5) / static_cast<double>(files.size()));
    return FromRocks(db_->CompactRange(collect, nullptr, nullptr),
                     "collecting the garbage of store " + path_);
  }

  std::string Describe(const std::string& key) const {
    return "store " + path_ + ": object " + key;
  }

  Status ReadManifest(const rocksdb::ReadOptions& options, const std::string& key, Manifest* m,
                      bool* found) {
    rocksdb::PinnableSlice value;
    const rocksdb::Status s =
        db_->Get(options, db_->DefaultColumnFamily(), ManifestKey(key), &value);
    *found = false;
    if (s.IsNotFound()) return Status::OK();
    POPVAULT_RETURN_IF_ERROR(FromRocks(s, Describe(key)));
    if (!DecodeManifest(value, m)) return Status::Corruption(Describe(key) + ": bad manifest");
    *found = true;
    return Status::OK();
  }

  // Writes every chunk but the last on its own, then the last chunk, the new
  // manifest and the deletion of the old chunks in one batch. Holds at most
  // two chunks in memory: one to write, one read ahead to see if it is last.
  // *chunks counts the chunks written so far (for cleanup on failure).
  Status WriteObject(const std::string& key, uint64_t generation, const Manifest& old, bool had_old,
                     const rocksdb::WriteOptions& write, ByteSource& src, uint64_t* chunks) {
    POPVAULT_RETURN_IF_ERROR(src.Rewind());
    // Sized by the announced size so that small objects (most) do not pay for
    // a full chunk buffer.
    const size_t cap = static_cast<size_t>(std::min<uint64_t>(kChunkSize, src.Size() + 1));
    std::string current, next;
    POPVAULT_RETURN_IF_ERROR(Fill(src, &current, cap));
    uint64_t total = 0;
    while (current.size() == cap) {
      POPVAULT_RETURN_IF_ERROR(Fill(src, &next, cap));
      if (next.empty()) break;
      POPVAULT_RETURN_IF_ERROR(
          FromRocks(db_->Put(write, ChunkKey(key, generation, *chunks), current),
                    "writing " + Describe(key)));
      ++*chunks;
      total += current.size();
      current.swap(next);
    }
    total += current.size();
    if (total != src.Size()) {
      return Status::IOError(Describe(key) + ": source yielded " + std::to_string(total) +
                             " bytes but announced " + std::to_string(src.Size()));
    }
    rocksdb::WriteBatch batch;
    if (!current.empty()) {
      POPVAULT_RETURN_IF_ERROR(
          FromRocks(batch.Put(ChunkKey(key, generation, *chunks), current), Describe(key)));
      ++*chunks;
    }
    const Manifest m{generation, total, *chunks};
    POPVAULT_RETURN_IF_ERROR(
        FromRocks(batch.Put(ManifestKey(key), EncodeManifest(m)), Describe(key)));
    if (had_old) {
      POPVAULT_RETURN_IF_ERROR(AddChunkDeletes(key, old.generation, 0, old.chunks, &batch));
    }
    POPVAULT_RETURN_IF_ERROR(AddLeftoverDeletes(key, generation, *chunks, &batch));
    return FromRocks(db_->Write(write, &batch), "writing " + Describe(key));
  }

  Status AddChunkDeletes(const std::string& key, uint64_t generation, uint64_t from, uint64_t to,
                         rocksdb::WriteBatch* batch) {
    for (uint64_t i = from; i < to; ++i) {
      POPVAULT_RETURN_IF_ERROR(
          FromRocks(batch->Delete(ChunkKey(key, generation, i)), Describe(key)));
    }
    return Status::OK();
  }

  // A Put that crashed or failed under this same generation may have left
  // more chunks than this one wrote; they would never be reachable again.
  Status AddLeftoverDeletes(const std::string& key, uint64_t generation, uint64_t count,
                            rocksdb::WriteBatch* batch) {
    const std::string limit = ChunkKey(key, generation + 1, 0);
    const rocksdb::Slice limit_slice(limit);
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &limit_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
    for (it->Seek(ChunkKey(key, generation, count)); it->Valid(); it->Next()) {
      POPVAULT_RETURN_IF_ERROR(FromRocks(batch->Delete(it->key()), Describe(key)));
    }
    return FromRocks(it->status(), Describe(key));
  }

  // Best effort after a failed Put: the chunks are unreachable anyway, and a
  // later Put of the key under the same generation cleans up what is left.
  void DeleteChunks(const std::string& key, uint64_t generation, uint64_t count) {
    rocksdb::WriteBatch batch;
    if (AddChunkDeletes(key, generation, 0, count, &batch).ok()) {
      db_->Write(rocksdb::WriteOptions(), &batch).PermitUncheckedError();
    }
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::string path_;
  KeyLocks locks_;
  std::atomic<bool> removed_{false};  // a Remove since the last Sync
};

Status CheckFormat(rocksdb::DB* db, const std::string& path) {
  std::string format;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions options;
    options.sync = true;
    return FromRocks(db->Put(options, kFormatKey, kFormat), "initializing store " + path);
  }
  POPVAULT_RETURN_IF_ERROR(FromRocks(s, "opening store " + path));
  if (format != kFormat) {
    return Status::NotSupported("store " + path + ": unknown format \"" + format + "\"");
  }
  return Status::OK();
}

}  // namespace

Status OpenRocksDbStorage(const std::string& path, std::unique_ptr<Storage>* storage) {
  // Memory stays bounded whatever the object sizes: the memtables, which
  // hold every chunk until a flush, stay small.
  rocksdb::Options options = rocksdb_common::SmallFootprintOptions();
  // Chunks are compressed mail, written once: keep them in blob files so
  // compactions move only keys and small values instead of rewriting them.
  options.enable_blob_files = true;
  // Smaller values (records, short mail) stay in the tables. Larger ones in
  // tables would make every compaction rewrite them: measured, 64 KiB here
  // costs a first archive 7% more CPU than 4 KiB. The price: each Sync after
  // new mail starts a blob file that compaction never merges (purge's
  // ReclaimRemoved rewrites old ones).
  options.min_blob_size = 4096;
  // Off: RocksDB's collection rewrites the live blobs of the oldest quarter of
  // the blob files at every compaction, garbage or not, which for an archive
  // (nothing removed but by purge) is rewriting the archive over and over.
  // ReclaimRemoved collects after removals instead.
  options.enable_blob_garbage_collection = false;
  // Each flush starts a blob file: bound the descriptors kept open for them
  // and for tables, however large the store grows.
  options.max_open_files = 512;
  rocksdb::DB* raw = nullptr;
  POPVAULT_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(options, path, &raw), "opening store " + path));
  std::unique_ptr<rocksdb::DB> db(raw);
  POPVAULT_RETURN_IF_ERROR(CheckFormat(db.get(), path));
  *storage = std::make_unique<RocksDbStorage>(std::move(db), path);
  return Status::OK();
}

}  // namespace popvault
