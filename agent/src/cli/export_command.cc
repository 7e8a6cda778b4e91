// popvault export: every archived message of each account, as
// DIR/ACCOUNT/SHA256.eml. The messages are the union of the records of all
// the account's stores (any one store may lack some: one was down during a
// sync, or lost them); each is read from the first store with an intact copy.
// A file already there is kept only if its SHA-256 matches its name.
//
// Files are written to a temporary name and renamed into place, fsynced, so
// an interrupted export leaves whole files only and can be re-run. All of it
// goes through descriptors opened without following symlinks, with O_EXCL
// for new files: DIR/ACCOUNT may be shared or prepared by someone else, and
// a symlink there must not make export write anywhere else. What export
// creates is private (0700 directories, 0600 files) whatever the umask: it
// is mail. Every message it could not export is named at the end.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "common/sha256.h"

namespace popvault {
namespace {

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

// A file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// mkdirat(at, name) as 0700, exactly (a umask only takes bits away; chmod
// puts the result beyond doubt), and the new entry synced in `at`. *created
// says whether it was new; an existing one is left as it is.
Status MakePrivateDir(int at, const std::string& name, const std::string& path, bool* created) {
  *created = mkdirat(at, name.c_str(), 0700) == 0;
  if (!*created) return errno == EEXIST ? Status::OK() : Errno("cannot create " + path);
  Fd fd(openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0 || fchmod(fd.get(), 0700) != 0) return Errno("cannot chmod " + path);
  return Status::OK();
}

Status SyncDir(int fd, const std::string& path) {
  return fsync(fd) == 0 ? Status::OK() : Errno("cannot fsync " + path);
}

// Opens the export directory DIR, creating what is missing of it (0700).
Status OpenOutputDir(const std::string& dir, Fd* out) {
  std::filesystem::path parent;
  for (const std::filesystem::path& part : std::filesystem::path(dir)) {
    const std::filesystem::path path = parent / part;
    if (!part.empty() && part != "/") {
      Fd at(open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (at.get() < 0) return Errno("cannot open " + (parent.empty() ? "." : parent.string()));
      bool created = false;
      POPVAULT_RETURN_IF_ERROR(MakePrivateDir(at.get(), part, path, &created));
      if (created) POPVAULT_RETURN_IF_ERROR(SyncDir(at.get(), parent.empty() ? "." : parent));
    }
    parent = path;
  }
  out->Reset(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return out->get() >= 0 ? Status::OK() : Errno("cannot open " + dir);
}

// SHA-256 of the regular file `name` in `dir_fd`; NotFound if there is none,
// Corruption if it is something else (a symlink, a FIFO, a directory).
Status HashFile(int dir_fd, const std::string& name, const std::string& path, std::string* hex) {
  // O_NONBLOCK: opening a FIFO planted there must not hang the export.
  Fd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) return Status::NotFound(path);
  if (fd.get() < 0 && errno == ELOOP) return Status::Corruption(path + " is a symlink");
  if (fd.get() < 0) return Errno("cannot open " + path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Errno("cannot stat " + path);
  if (!S_ISREG(st.st_mode)) return Status::Corruption(path + " is not a regular file");
  Sha256 sha;
  char buf[1 << 16];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot read " + path);
    sha.Update(buf, static_cast<size_t>(n));
  }
  *hex = sha.FinishHex();
  return Status::OK();
}

// The temporary file one message is written to, in the account's directory:
// created with O_EXCL | O_NOFOLLOW, so whatever sits at its name (a stale
// one from an interrupted export, or a planted symlink) is unlinked, never
// written through. Removed unless committed.
class TempFile : public ByteSink {
 public:
  TempFile(int dir_fd, std::string name, std::string dir_path)
      : dir_fd_(dir_fd), name_(std::move(name)), dir_path_(std::move(dir_path)) {}
  ~TempFile() override {
    if (fd_.get() >= 0) {
      fd_.Reset();
      unlinkat(dir_fd_, name_.c_str(), 0);
    }
  }

  Status Create() {
    if (unlinkat(dir_fd_, name_.c_str(), 0) != 0 && errno != ENOENT) {
      return Errno("cannot remove " + Path());
    }
    fd_.Reset(
        openat(dir_fd_, name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd_.get() < 0) return Errno("cannot create " + Path());
    if (fchmod(fd_.get(), 0600) != 0) return Errno("cannot chmod " + Path());
    return Status::OK();
  }

  Status Append(const char* data, size_t n) override {
    while (n > 0) {
      const ssize_t written = write(fd_.get(), data, n);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) return Errno("cannot write " + Path());
      data += written;
      n -= static_cast<size_t>(written);
    }
    return Status::OK();
  }

  // fsync, rename over `final_name`, fsync the directory.
  Status Commit(const std::string& final_name) {
    if (fsync(fd_.get()) != 0) return Errno("cannot fsync " + Path());
    if (close(fd_.Release()) != 0) {
      unlinkat(dir_fd_, name_.c_str(), 0);
      return Errno("cannot write " + Path());
    }
    if (renameat(dir_fd_, name_.c_str(), dir_fd_, final_name.c_str()) != 0) {
      const Status s = Errno("cannot rename " + Path() + " to " + final_name);
      unlinkat(dir_fd_, name_.c_str(), 0);
      return s;
    }
    return SyncDir(dir_fd_, dir_path_);
  }

 private:
  std::string Path() const { return dir_path_ + "/" + name_; }

  int dir_fd_;
  std::string name_, dir_path_;
  Fd fd_;
};

// Writes the message from the first of `archives` that has an intact copy.
// On failure, the reason names what each store said.
Status WriteMessage(const std::vector<Archive*>& archives, int dir_fd, const std::string& dir,
                    const std::string& sha256) {
  std::string reasons;
  for (Archive* archive : archives) {
    TempFile file(dir_fd, "." + sha256 + ".eml.tmp", dir);
    POPVAULT_RETURN_IF_ERROR(file.Create());  // local trouble: no other store helps
    const Status s = archive->ReadMessage(sha256, file);
    if (s.ok()) return file.Commit(sha256 + ".eml");
    reasons += (reasons.empty() ? "" : "; ") + ("store '" + archive->name() + "': " + s.ToString());
  }
  return Status::NotFound("no intact copy in any store of the account (" + reasons + ")");
}

struct ExportTally {
  uint64_t exported = 0;   // written (new or rewritten)
  uint64_t intact = 0;     // already there, SHA-256 checked
  uint64_t rewritten = 0;  // already there but wrong, written again
  uint64_t not_exported = 0;
  // One line per message not exported, and per store that failed.
  std::vector<std::string> failures;
};

// What the account's stores hold: sha256 -> one UIDL with it (messages are
// files by content, so one is exported once).
void ListAccount(const AccountConfig& account, const std::vector<Archive*>& archives,
                 std::map<std::string, std::string>* uidl_of, ExportTally* tally) {
  for (Archive* archive : archives) {
    const Status s = archive->ListRecords(account.name, [&](const ArchiveRecord& r) {
      uidl_of->emplace(r.sha256, r.uidl);
      return true;
    });
    if (!s.ok()) {
      tally->failures.push_back("account '" + account.name + "': store '" + archive->name() +
                                "': cannot list its records, those only it has are not " +
                                "exported: " + s.ToString());
    }
  }
}

void ExportAccount(Context& ctx, const AccountConfig& account, const std::string& output,
                   int output_fd, ExportTally* tally) {
  const std::string context = "account '" + account.name + "': ";
  std::vector<Archive*> archives;
  for (const std::string& name : account.stores) {
    Archive* archive = nullptr;
    const Status s = ctx.GetArchive(name, &archive);
    if (s.ok()) archives.push_back(archive);
    if (!s.ok()) tally->failures.push_back(context + s.ToString());
  }
  std::map<std::string, std::string> uidl_of;
  ListAccount(account, archives, &uidl_of, tally);
  if (uidl_of.empty()) return;

  const std::string dir = output + "/" + account.name;
  bool created = false;
  Status s = MakePrivateDir(output_fd, account.name, dir, &created);
  if (s.ok() && created) s = SyncDir(output_fd, output);
  Fd dir_fd(
      openat(output_fd, account.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (s.ok() && dir_fd.get() < 0) s = Errno("cannot open " + dir + " (a symlink?)");
  for (const auto& [sha256, uidl] : uidl_of) {
    const std::string name = sha256 + ".eml";
    std::string found;
    Status check = s.ok() ? HashFile(dir_fd.get(), name, dir + "/" + name, &found) : s;
    if (check.ok() && found == sha256) {
      ++tally->intact;
      continue;
    }
    const bool wrong = check.code() != Status::Code::kNotFound;  // something else is there
    Status written = s.ok() ? WriteMessage(archives, dir_fd.get(), dir, sha256) : s;
    if (written.ok() && wrong) {
      std::cerr << "popvault: " << context << dir << "/" << name << " was not that message ("
                << (check.ok() ? "SHA-256 " + found : check.message()) << "): rewritten\n";
      ++tally->rewritten;
    }
    if (!written.ok()) {
      ++tally->not_exported;
      tally->failures.push_back("not exported: account '" + account.name + "' uidl " +
                                EncodeUidl(uidl) + " sha256 " + sha256 + ": " + written.ToString());
    } else if (++tally->exported % 1000 == 0) {
      std::cerr << "popvault: exported " << tally->exported << " messages\n";
    }
  }
}

}  // namespace

int Export(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  if (!SelectCommandAccounts(ctx, args, &accounts)) return 2;
  Fd output_fd;
  Status s = OpenOutputDir(args.output, &output_fd);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  ExportTally tally;
  for (const AccountConfig* account : accounts) {
    ExportAccount(ctx, *account, args.output, output_fd.get(), &tally);
  }
  for (const std::string& failure : tally.failures) std::cerr << "popvault: " << failure << "\n";
  std::cout << tally.exported << " message(s) exported to " << args.output << " ("
            << tally.rewritten << " of them rewritten), " << tally.intact
            << " already there and intact, " << tally.not_exported << " not exported\n";
  return tally.failures.empty() ? 0 : 1;
}

}  // namespace popvault
