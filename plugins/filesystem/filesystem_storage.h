// The filesystem storage backend: one plain file per object, so that an admin
// can browse, back up and restore a store with ordinary tools.
//
// Layout: the object under key K is the file <root>/K ('/' in K separates
// directories), e.g. <root>/messages/ab/ab12....zst. Directories are created
// on demand and never removed (an emptied directory stays, to be reused).
// A Put writes a temp file next to its target, named
// ".<name>.tmp~<16 hex digits>": the leading '.' hides it from ls, and the
// '~', which no key may contain, means it can never be mistaken for an object.
// Temp files are never listed or returned; those left by a crash are deleted
// by a List that walks past them once they are a day old.
//
// Durability and atomicity (see popvault/storage.h): Put fsyncs the temp file
// (data only) before renaming it into place, so that after a crash a key holds
// its old or its new object in full; the directory entries that the renames,
// unlinks and directory creations changed are fsynced by the next Sync(). If
// Sync fails once, every later Sync on this instance fails too (a retried
// fsync can report success for data the kernel already dropped).
//
// Keys: the Storage rules, plus: no "." component (it would name the directory
// itself). A key cannot be both an object and a directory of other objects
// ("a" and "a/b"): the second Put fails with IOError. A component longer than
// the filesystem allows (usually 255 bytes) fails with IOError. Keys differing
// only in case collide on case-insensitive filesystems.
//
// Errors: IOError names the file or directory and the system's error text
// (including "No space left on device"). All methods are thread-safe and never
// throw.
#pragma once

#include <memory>
#include <string>

#include "popvault/storage.h"

namespace popvault {

// Opens the store rooted at directory `root`, creating it (and its parents)
// if missing. InvalidArgument if `root` is empty; IOError if it cannot be
// created or is not a directory.
Status OpenFilesystemStorage(const std::string& root, std::unique_ptr<Storage>* storage);

}  // namespace popvault
