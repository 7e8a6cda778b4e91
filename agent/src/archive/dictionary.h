// Zstandard dictionaries: what the archive layer needs to compress messages
// with a trained dictionary and to read them back.
//
// A dictionary is the standard zstd format (what `zstd --train` writes: magic
// 0xEC30A437, a dictionary ID, entropy tables, content). Its ID is what every
// frame compressed with it names in its header, so a message object says by
// itself which dictionary it needs (0: none). IDs this code chooses lie in the
// range zstd leaves to users, [32768, 2^31).
//
// In a store a dictionary is the object dicts/<id>-<sha256>.zdict (see
// DictionaryKey and schemas/README.md); Archive writes, verifies and looks
// them up. This file holds what needs no store: parsing, training, the
// compression/decompression tables, and Codec (level + dictionary).
//
// Thread-safety: a ZstdDictionary is immutable once loaded and may be shared
// by any number of threads (its tables are built under a lock on first use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "popvault/status.h"

typedef struct ZSTD_CDict_s ZSTD_CDict;
typedef struct ZSTD_DDict_s ZSTD_DDict;

namespace popvault {

// The dictionary IDs popvault chooses: the range zstd leaves to users.
constexpr uint32_t kMinUserDictionaryId = 32768;
constexpr uint32_t kMaxUserDictionaryId = 0x7FFFFFFF;
// A dictionary object larger than this is treated as damage, not read.
constexpr size_t kMaxDictionaryBytes = 4 << 20;

class ZstdDictionary {
 public:
  // Checks that `bytes` is a zstd-format dictionary with a nonzero ID that
  // zstd accepts for decompression. InvalidArgument otherwise.
  static Status Load(std::string bytes, std::shared_ptr<const ZstdDictionary>* out);

  ~ZstdDictionary();
  ZstdDictionary(const ZstdDictionary&) = delete;
  ZstdDictionary& operator=(const ZstdDictionary&) = delete;

  uint32_t id() const { return id_; }
  const std::string& bytes() const { return bytes_; }
  const std::string& sha256() const { return sha256_; }  // of bytes(), lowercase hex
  std::string key() const;                               // its object key in a store

  const ZSTD_DDict* ddict() const { return ddict_; }
  // Compression tables for `level`, built on first use and kept. Null if zstd
  // cannot build them (out of memory).
  const ZSTD_CDict* cdict(int level) const;

 private:
  ZstdDictionary() = default;

  uint32_t id_ = 0;
  std::string bytes_;
  std::string sha256_;
  ZSTD_DDict* ddict_ = nullptr;
  mutable std::mutex mu_;
  mutable std::map<int, ZSTD_CDict*> cdicts_;
};

// "dicts/<id, decimal>-<sha256 of the object, lowercase hex>.zdict".
std::string DictionaryKey(uint32_t id, const std::string& sha256);
// The inverse of DictionaryKey; false for any other key.
bool ParseDictionaryKey(std::string_view key, uint32_t* id, std::string* sha256);
// The ID a zstd-format dictionary declares; 0 if `bytes` is not one.
uint32_t DictionaryIdOf(std::string_view bytes);
// The same dictionary under another ID (only the ID field changes: a frame
// compressed with either decompresses with either, but names its own ID).
// `bytes` must be a zstd-format dictionary.
std::string WithDictionaryId(std::string bytes, uint32_t id);
// The i-th ID to try for a dictionary whose ID is taken (i = 0, 1, ...):
// derived from its SHA-256, so retrying is deterministic; in the user range.
uint32_t AlternativeDictionaryId(const std::string& sha256_hex, unsigned i);

constexpr size_t kMinTrainingBytes = 16 << 10;

struct DictionaryTrainingOptions {
  // Largest dictionary to build. zstd's guidance is ~100 KB.
  size_t max_dictionary_bytes = 112 << 10;
  // Only this much of each sample is used: the header block and the start of
  // the body, which is where messages of one mailbox resemble each other.
  size_t sample_bytes = 8 << 10;
  // Fewer samples than this (after dropping empty ones) is InvalidArgument.
  size_t min_samples = 100;
  // The level the dictionary's statistics are tuned for (the store's level).
  int compression_level = 3;
  // fastCover segment and d-mer sizes; 0 makes zstd search k in 50..2000 and
  // d in {6, 8} (slower, and on the test corpus no better: it sometimes
  // settles on a dictionary of a few KB). k = 1000, d = 8 measured best there.
  unsigned k = 1000;
  unsigned d = 8;
  // fastCover: 0 = zstd's default (4); more tries more k values (slower).
  unsigned steps = 0;
};

// Trains a zstd-format dictionary from `samples` (each cut to
// options.sample_bytes). Its ID is content-derived, in the user range.
// InvalidArgument, naming the cause, when there are too few samples, less
// than kMinTrainingBytes of them, or zstd cannot build a dictionary from them;
// then *dictionary is empty. If the result is far smaller than asked for
// although the samples had plenty of data, training is retried the other way
// (fixed k/d <-> search) and the larger dictionary kept.
Status TrainDictionary(const std::vector<std::string>& samples,
                       const DictionaryTrainingOptions& options, std::string* dictionary);

// How a store compresses new messages: a zstd level, and the dictionary if it
// uses one (null: plain frames).
struct Codec {
  int level = 3;
  std::shared_ptr<const ZstdDictionary> dictionary;

  uint32_t dictionary_id() const { return dictionary ? dictionary->id() : 0; }
  // Same level and same dictionary bytes (IDs alone may repeat across stores).
  bool operator==(const Codec& other) const;
  // "zstd -3" or "zstd -3 dictionary 123456".
  std::string ToString() const;
};

}  // namespace popvault
