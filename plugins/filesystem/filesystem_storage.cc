#include "filesystem_storage.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <sys/stat.h>

#include <climits>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

// Why Put fsyncs the temp file, and why the rest waits for Sync:
//
// Atomicity must hold even for Puts that were never synced. Renaming a file
// whose data has not reached the disk is not safe: after a power cut, ext4
// (for a new name), XFS and others can show the new name with a zero-length
// or partially written file, which would replace a good old object by a torn
// one. So Put writes the temp file, fsyncs its data, and only then renames
// it: whichever name the directory holds after a crash, the file behind it is
// complete.
//
// Durability only has to hold after Sync. The rename (and an unlink, and a
// new directory) changes a directory, and that change is durable once the
// directory is fsynced. Put and Remove just note the directory; Sync fsyncs
// each noted directory once, however many objects changed in it, which is
// what makes a group commit of many Puts cheap. A new directory is itself an
// entry in its parent, so the parent is noted too, up to the first directory
// already known durable. Per Put that leaves one data fsync; the cheaper
// alternatives (no fsync before the rename, or syncing the data only in
// Sync) break atomicity, or visibility before Sync.
//
// A process that crashed between Put and Sync leaves renames that are visible
// but not yet durable, and the next process, finding the object, will not
// Put it again. So Open syncs the whole filesystem once.

namespace popvault {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Platform layer: the only code that is not std::filesystem. Functions return
// -1 and leave the reason in errno, like the system calls they wrap.
// ---------------------------------------------------------------------------
#ifdef _WIN32
// NOT BUILT OR TESTED: popvault is built and tested on Linux only. The file
// calls map to the MSVC CRT; the two whole-directory syncs are TODOs that fail
// with ENOSYS, so until they are written a Windows build cannot open a store
// at all, rather than silently lose durability. To implement: FlushFileBuffers on a directory
// handle opened with FILE_FLAG_BACKUP_SEMANTICS (or renaming with MoveFileExW and
// MOVEFILE_WRITE_THROUGH), and FlushFileBuffers on the volume for Open. Also
// unchecked: _wopen of a directory fails with EACCES (Get reports IOError
// rather than NotFound) and a rename onto a file open for reading fails.
namespace sys {

int OpenForRead(const fs::path& p) {
  return ::_wopen(p.c_str(), _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}
int CreateExclusive(const fs::path& p) {
  return ::_wopen(p.c_str(), _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT,
                  _S_IREAD | _S_IWRITE);
}
long long ReadSome(int fd, char* buf, size_t n) {
  return ::_read(fd, buf, static_cast<unsigned>(std::min<size_t>(n, INT_MAX)));
}
long long WriteSome(int fd, const char* buf, size_t n) {
  return ::_write(fd, buf, static_cast<unsigned>(std::min<size_t>(n, INT_MAX)));
}
int SyncFileData(int fd) { return ::_commit(fd); }
int Close(int fd) { return ::_close(fd); }
int RemoveFile(const fs::path& p) { return ::_wunlink(p.c_str()); }
int SyncDirectory(const fs::path&) {
  errno = ENOSYS;  // TODO(windows): see above
  return -1;
}
int SyncFilesystemOf(const fs::path&) {
  errno = ENOSYS;  // TODO(windows): see above
  return -1;
}

}  // namespace sys
#else
namespace sys {

int SyncFd(int fd, bool data_only) {
#if defined(__APPLE__)
  // macOS's fsync does not flush the drive's write cache (not built here).
  (void)data_only;
  return ::fcntl(fd, F_FULLFSYNC);
#else
  return data_only ? ::fdatasync(fd) : ::fsync(fd);
#endif
}

// Opens a regular file (or a symlink to one); EISDIR for a directory, which
// holds no object.
int OpenForRead(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  int err;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (S_ISDIR(st.st_mode)) {
    err = EISDIR;
  } else {
    return fd;
  }
  ::close(fd);
  errno = err;
  return -1;
}
int CreateExclusive(const fs::path& p) {
  return ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
}
long long ReadSome(int fd, char* buf, size_t n) {
  ssize_t r;
  do r = ::read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}
long long WriteSome(int fd, const char* buf, size_t n) {
  ssize_t r;
  do r = ::write(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}
// Data and the size, which is all a reader of the renamed file needs.
int SyncFileData(int fd) { return SyncFd(fd, /*data_only=*/true); }
// Not retried on EINTR: Linux closes the descriptor anyway.
int Close(int fd) { return ::close(fd); }
int RemoveFile(const fs::path& p) { return ::unlink(p.c_str()); }

int SyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = SyncFd(fd, /*data_only=*/false);
  // Some filesystems cannot fsync a directory at all; like PostgreSQL, accept
  // that rather than make the store unusable there.
  if (r != 0 && errno == EINVAL) r = 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  return r;
}

int SyncFilesystemOf(const fs::path& dir) {
#if defined(__linux__)
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  const int r = ::syncfs(fd);
  const int err = errno;
  ::close(fd);
  errno = err;
  return r;
#else
  // POSIX allows sync() to return before the writes finish (not built here).
  (void)dir;
  ::sync();
  return 0;
#endif
}

}  // namespace sys
#endif

// ---------------------------------------------------------------------------
// Keys and names.
// ---------------------------------------------------------------------------
constexpr size_t kMaxKeySize = 512;
constexpr size_t kMaxBufferSize = 256 << 10;
constexpr size_t kMinBufferSize = 4 << 10;
// Long enough to recognise the object, short enough that the temp name stays
// within the usual 255-byte limit.
constexpr size_t kMaxTempStem = 100;
constexpr std::string_view kTempMarker = ".tmp~";
constexpr auto kStaleTempAge = std::chrono::hours(24);
constexpr int kCreateAttempts = 16;

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Also the test for a directory entry being part of a key: temp files ('~')
// and foreign names fail it.
bool IsValidComponent(std::string_view c) {
  return !c.empty() && c != "." && c.find("..") == std::string_view::npos &&
         std::all_of(c.begin(), c.end(), IsKeyChar);
}

bool IsValidKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeySize) return false;
  for (size_t start = 0;;) {
    const size_t slash = key.find('/', start);
    if (!IsValidComponent(key.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

Status CheckKey(const std::string& key) {
  if (!IsValidKey(key)) return Status::InvalidArgument("not a valid storage key: \"" + key + "\"");
  return Status::OK();
}

Status CheckPrefix(const std::string& prefix) {
  const bool ok =
      prefix.size() <= kMaxKeySize &&
      std::all_of(prefix.begin(), prefix.end(), [](char c) { return c == '/' || IsKeyChar(c); });
  if (!ok) return Status::InvalidArgument("not a valid storage key prefix: \"" + prefix + "\"");
  return Status::OK();
}

// "" for a key at the top of the tree.
std::string_view DirOf(std::string_view key) {
  const size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
}

std::string_view NameOf(std::string_view key) { return key.substr(key.rfind('/') + 1); }

std::string Join(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : std::string(dir) + "/" + std::string(name);
}

bool IsTempName(std::string_view name) {
  return name.starts_with('.') && name.find(kTempMarker) != std::string_view::npos;
}

uint64_t RandomSeed() {
  // random_device may throw where there is no entropy source; O_EXCL keeps
  // temp names unique anyway, so the clock is good enough then.
  try {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  } catch (...) {
    return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
}

std::string TempName(std::string_view name) {
  thread_local std::mt19937_64 rng(RandomSeed());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string temp(1, '.');
  temp.append(name.substr(0, kMaxTempStem)).append(kTempMarker);
  for (uint64_t v = rng(), i = 0; i < 16; ++i, v >>= 4) temp.push_back(kHex[v & 15]);
  return temp;
}

// ---------------------------------------------------------------------------
// Buffers and errors.
// ---------------------------------------------------------------------------
class Buffer {
 public:
  explicit Buffer(size_t size) : data_(std::make_unique_for_overwrite<char[]>(size)), size_(size) {}
  char* data() { return data_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

Status IOError(const std::string& action, const std::string& what, const std::error_code& ec) {
  return Status::IOError(action + " " + what + ": " + ec.message());
}

Status IOError(const std::string& action, const std::string& what, int err) {
  return IOError(action, what, std::error_code(err, std::generic_category()));
}

bool IsAbsent(int err) { return err == ENOENT || err == ENOTDIR; }

// Closes a descriptor on scope exit; for reads, where a close error is moot.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { sys::Close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

// A temp file being written; deleted on destruction unless renamed into place.
class TempFile {
 public:
  TempFile() = default;
  ~TempFile() {
    if (fd_ >= 0) sys::Close(fd_);
    if (!path_.empty()) sys::RemoveFile(path_);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Creates the file exclusively; the errno of a failure is in *err.
  bool Create(fs::path path, std::string display, int* err) {
    fd_ = sys::CreateExclusive(path);
    *err = errno;
    if (fd_ < 0) return false;
    path_ = std::move(path);
    display_ = std::move(display);
    return true;
  }

  Status Write(const char* data, size_t n) {
    while (n > 0) {
      const long long w = sys::WriteSome(fd_, data, n);
      if (w < 0) return IOError("writing", display_, errno);
      data += w;
      n -= static_cast<size_t>(w);
    }
    return Status::OK();
  }

  // Makes the data durable and closes the file (a close can report a
  // delayed write error, e.g. on NFS).
  Status Finish() {
    if (sys::SyncFileData(fd_) != 0) return IOError("syncing", display_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (sys::Close(fd) != 0) return IOError("closing", display_, errno);
    return Status::OK();
  }

  Status RenameTo(const fs::path& target, const std::string& target_display) {
    std::error_code ec;
    fs::rename(path_, target, ec);
    if (ec) return IOError("renaming " + display_ + " to", target_display, ec);
    path_.clear();
    return Status::OK();
  }

 private:
  int fd_ = -1;
  fs::path path_;  // empty once renamed
  std::string display_;
};

// ---------------------------------------------------------------------------
// The store. Directories are named by their path relative to the root, with
// '/' separators ("" is the root), like keys.
// ---------------------------------------------------------------------------
class FilesystemStorage : public Storage {
 public:
  FilesystemStorage(fs::path root, std::string root_display)
      : root_(std::move(root)), root_display_(std::move(root_display)) {
    durable_.insert("");  // Open synced the filesystem
  }

  Status Put(const std::string& key, ByteSource& src) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    TempFile temp;
    POPVAULT_RETURN_IF_ERROR(CreateTemp(key, &temp));
    POPVAULT_RETURN_IF_ERROR(Copy(src, &temp).WithContext(Display(key)));
    POPVAULT_RETURN_IF_ERROR(temp.Finish());
    POPVAULT_RETURN_IF_ERROR(temp.RenameTo(PathOf(key), Display(key)));
    // Only after the rename: a Sync that starts earlier does not owe it.
    NoteChanged(DirOf(key));
    return Status::OK();
  }

  Status Get(const std::string& key, ByteSink& sink) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    const int fd = sys::OpenForRead(PathOf(key));
    if (fd < 0) {
      const int err = errno;
      if (IsAbsent(err) || err == EISDIR) {
        return Status::NotFound(Display(key) + ": no such object");
      }
      return IOError("opening", Display(key), err);
    }
    FdCloser closer(fd);
    Buffer buf(kMaxBufferSize);
    for (;;) {
      const long long n = sys::ReadSome(fd, buf.data(), buf.size());
      if (n < 0) return IOError("reading", Display(key), errno);
      if (n == 0) return Status::OK();
      POPVAULT_RETURN_IF_ERROR(sink.Append(buf.data(), static_cast<size_t>(n)));
    }
  }

  Status Exists(const std::string& key, bool* exists) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    std::error_code ec;
    const fs::file_status st = fs::status(PathOf(key), ec);
    *exists = fs::is_regular_file(st);
    if (ec && st.type() != fs::file_type::not_found) return IOError("checking", Display(key), ec);
    return Status::OK();
  }

  Status Remove(const std::string& key) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    const fs::path path = PathOf(key);
    const std::string_view dir = DirOf(key);
    if (sys::RemoveFile(path) == 0) {
      NoteChanged(dir);
      return Status::OK();
    }
    const int err = errno;
    std::error_code ec;
    if (IsAbsent(err)) {
      // A concurrent Remove may have unlinked it and not noted it yet; this
      // call's OK must still be made durable by the next Sync.
      if (fs::is_directory(PathOf(dir), ec)) NoteChanged(dir);
      return Status::OK();
    }
    if (fs::is_directory(path, ec)) return Status::OK();  // holds no object
    return IOError("removing", Display(key), err);
  }

  Status List(const std::string& prefix,
              const std::function<bool(const std::string& key)>& fn) override {
    POPVAULT_RETURN_IF_ERROR(CheckPrefix(prefix));
    // Only the directory named by the prefix's complete components can hold
    // matches; its entries must start with the rest.
    const std::string_view dir = DirOf(prefix);
    const bool has_dir = prefix.find('/') != std::string::npos;
    if (has_dir && !IsValidKey(dir)) return Status::OK();  // no key starts so
    bool stop = false;
    return ListDir(std::string(dir), NameOf(prefix), fn, &stop);
  }

  Status Sync() override {
    // One Sync at a time: a second one must not return before the directories
    // the first took over are synced.
    std::lock_guard<std::mutex> sync_lock(sync_mu_);
    if (!sync_error_.ok()) {
      return sync_error_.WithContext("an earlier sync of store " + root_display_ +
                                     " failed; reopen it");
    }
    std::set<std::string> dirs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dirs.swap(dirty_);
    }
    for (const std::string& dir : dirs) {
      if (sys::SyncDirectory(PathOf(dir)) != 0) {
        // After a failed fsync the kernel may have dropped the dirty state, so
        // a retry could succeed without writing anything: never claim again.
        sync_error_ = IOError("syncing directory", Display(dir), errno);
        return sync_error_;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    durable_.insert(dirs.begin(), dirs.end());
    return Status::OK();
  }

 private:
  fs::path PathOf(std::string_view rel) const {
    fs::path p = root_;
    for (size_t start = 0; start < rel.size();) {
      const size_t slash = std::min(rel.find('/', start), rel.size());
      p /= rel.substr(start, slash - start);
      start = slash + 1;
    }
    return p;
  }

  std::string Display(std::string_view rel) const {
    return rel.empty() ? root_display_ : root_display_ + "/" + std::string(rel);
  }

  // Notes that entries of `dir` changed, and (for directories not known to
  // be durable yet) that each parent gained an entry.
  void NoteChanged(std::string_view dir) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string d(dir);
    dirty_.insert(d);
    while (!d.empty() && !durable_.count(d)) {
      d = std::string(DirOf(d));
      dirty_.insert(d);
    }
  }

  Status CreateTemp(const std::string& key, TempFile* temp) {
    const std::string_view dir = DirOf(key);
    bool made_dirs = false;
    for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
      const std::string rel = Join(dir, TempName(NameOf(key)));
      int err = 0;
      if (temp->Create(PathOf(rel), Display(rel), &err)) return Status::OK();
      if (err == ENOENT && !made_dirs) {
        POPVAULT_RETURN_IF_ERROR(MakeDirs(dir));
        made_dirs = true;
      } else if (err != EEXIST) {
        return IOError("creating", Display(rel), err);
      }
    }
    return Status::IOError(Display(key) + ": found no unused temp file name");
  }

  // Creates `dir` and its missing parents.
  Status MakeDirs(std::string_view dir) {
    for (size_t end = 0; end < dir.size();) {
      end = std::min(dir.find('/', end + 1), dir.size());
      const std::string_view rel = dir.substr(0, end);
      std::error_code ec;
      const bool created = fs::create_directory(PathOf(rel), ec);
      if (ec) return IOError("creating directory", Display(rel), ec);
      if (created) {
        // Normally never there; this covers a directory deleted under us.
        std::lock_guard<std::mutex> lock(mu_);
        durable_.erase(std::string(rel));
      }
    }
    return Status::OK();
  }

  // Copies all of `src` into the temp file and checks the announced size.
  Status Copy(ByteSource& src, TempFile* temp) {
    POPVAULT_RETURN_IF_ERROR(src.Rewind());
    const uint64_t size = src.Size();
    Buffer buf(static_cast<size_t>(std::clamp<uint64_t>(size, kMinBufferSize, kMaxBufferSize)));
    uint64_t total = 0;
    for (;;) {
      size_t n = 0;
      POPVAULT_RETURN_IF_ERROR(src.Read(buf.data(), buf.size(), &n));
      if (n == 0) break;
      total += n;
      if (total > size) break;  // a lying source: do not write on and on
      POPVAULT_RETURN_IF_ERROR(temp->Write(buf.data(), n));
    }
    if (total != size) {
      return Status::IOError("the source announced " + std::to_string(size) +
                             " bytes but yielded " +
                             (total > size ? "more" : std::to_string(total)));
    }
    return Status::OK();
  }

  // Calls fn for every key under directory `dir` whose next component starts
  // with `leaf`, in byte order; sets *stop when fn returns false.
  Status ListDir(const std::string& dir, std::string_view leaf,
                 const std::function<bool(const std::string& key)>& fn, bool* stop) {
    std::vector<std::string> entries;
    POPVAULT_RETURN_IF_ERROR(ReadDir(dir, leaf, &entries));
    for (const std::string& entry : entries) {
      const bool is_dir = entry.back() == '/';
      const std::string key = Join(dir, is_dir ? entry.substr(0, entry.size() - 1) : entry);
      if (key.size() > kMaxKeySize) continue;  // no valid key (and none below)
      if (is_dir) {
        POPVAULT_RETURN_IF_ERROR(ListDir(key, "", fn, stop));
      } else {
        *stop = !fn(key);
      }
      if (*stop) return Status::OK();
    }
    return Status::OK();
  }

  // Sets *entries to the names in `dir` that start with `leaf` and are key
  // components, sorted in the byte order of the keys they lead to: a
  // directory sorts as its name plus '/', since its keys continue so.
  Status ReadDir(const std::string& dir, std::string_view leaf, std::vector<std::string>* entries) {
    std::error_code ec;
    fs::directory_iterator it(PathOf(dir), ec);
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return Status::OK();
    }
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (IsTempName(name)) RemoveIfStale(*it);
      if (!name.starts_with(leaf) || !IsValidComponent(name)) continue;
      std::error_code type_ec;
      const bool is_dir = it->is_directory(type_ec);
      const bool is_file = !type_ec && it->is_regular_file(type_ec);
      // A dangling symlink is no object; any other failure is an error.
      if (type_ec && type_ec != std::errc::no_such_file_or_directory) {
        return IOError("checking", Display(Join(dir, name)), type_ec);
      }
      if (is_dir) entries->push_back(name + "/");
      if (is_file) entries->push_back(name);
    }
    if (ec) return IOError("listing", Display(dir), ec);
    std::sort(entries->begin(), entries->end());
    return Status::OK();
  }

  // Temp files of live Puts are seconds old; one a day old is a crash's.
  // Best effort: a failure just leaves it for the next List.
  static void RemoveIfStale(const fs::directory_entry& entry) {
    std::error_code ec;
    const fs::file_time_type written = entry.last_write_time(ec);
    if (!ec && fs::file_time_type::clock::now() - written > kStaleTempAge) {
      fs::remove(entry.path(), ec);
    }
  }

  const fs::path root_;
  const std::string root_display_;

  std::mutex mu_;                  // guards dirty_ and durable_
  std::set<std::string> dirty_;    // directories whose changes the next Sync syncs
  std::set<std::string> durable_;  // directories whose own entry is durable

  std::mutex sync_mu_;  // held through Sync; guards sync_error_
  Status sync_error_;
};

}  // namespace

Status OpenFilesystemStorage(const std::string& root, std::unique_ptr<Storage>* storage) {
  if (root.empty()) return Status::InvalidArgument("empty root directory");
  std::error_code ec;
  fs::path path = fs::absolute(fs::path(root), ec).lexically_normal();
  if (ec) return IOError("resolving", root, ec);
  if (!path.has_filename() && path.has_relative_path()) path = path.parent_path();  // "dir/"
  fs::create_directories(path, ec);
  if (ec) return IOError("creating directory", root, ec);
  if (!fs::is_directory(path, ec)) return Status::IOError(root + ": not a directory");
  if (sys::SyncFilesystemOf(path) != 0) return IOError("syncing the filesystem of", root, errno);
  const std::string display = path.string();
  *storage = std::make_unique<FilesystemStorage>(std::move(path), display);
  return Status::OK();
}

}  // namespace popvault
