// Storage: the plain interface every storage backend (plugin) implements.
//
// A Storage is a flat map from keys to opaque objects (byte strings). It knows
// nothing about mail: compression, hashing and the archive key layout are the
// agent's layers around it (agent/src/archive/), so a backend only moves bytes.
//
// Keys are 1..512 bytes of [A-Za-z0-9._-] separated by '/', never starting or
// ending with '/' and never containing "..". The agent only ever passes such keys; a backend may
// reject others with InvalidArgument.
//
// Durability: an operation that returned OK is visible to every later call on
// any instance of the same store, but may be lost on a crash or power cut
// until a later Sync() returns OK. This lets the agent group-commit: many Puts,
// one Sync, before anything that depends on them (a DELE) happens.
//
// Atomicity: after a crash a key holds either its old object or its new one in
// full, never a prefix or a mix.
//
// Thread-safety: all methods may be called concurrently from several threads.
//
// Errors: methods return Status; they never throw. NotFound is returned only
// where documented below.
//
// Failure: an IOError may leave the instance failed for good ("sticky"): a
// filesystem store after a failed fsync, a RocksDB store after a background
// error such as a full disk. A backend need not recover by itself, and after
// a failed Sync it must not claim durability again: every later Sync of that
// instance fails too (a retried fsync can report success for data the kernel
// already dropped). The remedy is the agent's: it stops using an instance
// that returned IOError and opens the store again, destroying the old
// instance first (the daemon does so with backoff: daemon/store_keeper.h).
// No other code (NotFound, Corruption, InvalidArgument) says anything about
// the instance.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "popvault/byte_stream.h"
#include "popvault/status.h"

namespace popvault {

class Storage {
 public:
  virtual ~Storage() = default;

  // Stores the bytes of `src` (read from its start) under `key`, replacing any
  // object there.
  virtual Status Put(const std::string& key, ByteSource& src) = 0;

  // Streams the object under `key` into `sink`. NotFound if there is none.
  // On any error the sink may have received a prefix of the object.
  virtual Status Get(const std::string& key, ByteSink& sink) = 0;

  // Sets *exists. Not finding the key is not an error.
  virtual Status Exists(const std::string& key, bool* exists) = 0;

  // Removes the object under `key`. OK if there was none.
  virtual Status Remove(const std::string& key) = 0;

  // Calls fn(key) for every key starting with `prefix`, in ascending byte
  // order, until fn returns false.
  virtual Status List(const std::string& prefix,
                      const std::function<bool(const std::string& key)>& fn) = 0;

  // Makes every Put and Remove that returned OK before this call durable.
  virtual Status Sync() = 0;
};

}  // namespace popvault
