#include "retention/audit_log.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "archive/record.h"

namespace popvault {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError("audit log " + path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

Status AuditLog::Open(const std::string& path, std::unique_ptr<AuditLog>* log) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Status::IOError("audit log " + path + ": " + ec.message());
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open", path);
  log->reset(new AuditLog(path, fd));
  return Status::OK();
}

AuditLog::~AuditLog() { ::close(fd_); }

std::string AuditLog::Format(const AuditDeletion& d) {
  Poco::JSON::Object line(Poco::JSON_PRESERVE_KEY_ORDER);
  const bool purged = d.event == AuditEvent::kPurged;
  line.set("event", std::string(purged ? "purged" : "deleted"));
  line.set("time", FormatTimestamp(d.time));
  line.set("unix_time", static_cast<Poco::Int64>(d.time));
  line.set("account", d.account);
  line.set("uidl", EncodeUidl(d.uidl));
  line.set("sha256", d.sha256);
  line.set("size", static_cast<Poco::UInt64>(d.size));
  Poco::JSON::Array stores;
  for (const std::string& s : d.stores_verified) stores.add(s);
  line.set(purged ? "stores_purged" : "stores_verified", stores);
  std::ostringstream out;
  line.stringify(out);
  return out.str();
}

Status AuditLog::Append(const std::vector<AuditDeletion>& deletions) {
  if (deletions.empty()) return Status::OK();
  std::string text;
  for (const AuditDeletion& d : deletions) text += Format(d) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot append", path_);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) return Errno("cannot fsync", path_);
  return Status::OK();
}

}  // namespace popvault
