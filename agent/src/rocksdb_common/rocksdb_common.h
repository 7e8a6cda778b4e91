// What popvault's two RocksDB databases share: the ledger
// (agent/src/ledger) and the embedded store (plugins/rocksdb). Header only,
// so that the store plugin links no agent code.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <chrono>
#include <string>
#include <thread>

namespace popvault::rocksdb_common {

// Options that keep memory small and bounded whatever the database holds,
// for a database created if missing.
inline rocksdb::Options SmallFootprintOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.keep_log_file_num = 10;  // RocksDB's own info logs, not the WAL
  // Small memtables (RocksDB's default is 2 x 64 MiB), at the cost of more,
  // smaller flushes.
  options.write_buffer_size = 4 << 20;
  options.max_write_buffer_number = 2;
  // A small block cache that also holds index and filter blocks, so memory
  // does not grow with the number of table files.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(4 << 20);
  table.cache_index_and_filter_blocks = true;
  // Debian's RocksDB computes CRC32C in software; XXH3 costs a fraction of it
  // for every table block written, compacted and read.
  table.checksum = rocksdb::kXXH3;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.writable_file_max_buffer_size = 256 << 10;  // per open WAL/table/blob file
  return options;
}

// Waits, up to `limit`, until RocksDB has no flush or compaction running or
// due. Call before closing: closing cancels the compaction in progress and
// throws its work away, so a short `popvault sync` would leave the same
// backlog to the next one, which would start it again, and so on, while
// table files pile up. Not after a background error (a full disk): RocksDB
// has stopped its background work then, and waiting would only delay exit.
inline void WaitForBackgroundWork(rocksdb::DB& db, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto busy = [&db] {
    uint64_t v = 0;
    if (db.GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &v) && v > 0) return false;
    for (const std::string& p : {rocksdb::DB::Properties::kCompactionPending,
                                 rocksdb::DB::Properties::kNumRunningCompactions,
                                 rocksdb::DB::Properties::kNumRunningFlushes,
                                 rocksdb::DB::Properties::kMemTableFlushPending}) {
      if (db.GetIntProperty(p, &v) && v > 0) return true;
    }
    return false;
  };
  while (busy() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace popvault::rocksdb_common
