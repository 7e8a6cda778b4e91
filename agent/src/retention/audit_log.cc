#include "retention/audit_log.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

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
  // Read too: Append looks at the last byte (a line a crash cut short).
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
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
  // After a crash cut the last append short, the first line starts on a line
  // of its own: the torn one stays unparsable alone, not glued to this.
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Errno("cannot stat", path_);
  char last = '\n';
  if (st.st_size > 0 && ::pread(fd_, &last, 1, st.st_size - 1) != 1) {
    return Errno("cannot read", path_);
  }
  if (last != '\n') text.insert(text.begin(), '\n');
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot append", path_);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) return Errno("cannot fsync", path_);
  return Status::OK();
}

Status AuditLog::FindDeleted(const std::vector<AuditDeletion>& deletions,
                             const std::vector<int64_t>& not_before, std::vector<bool>* found) {
  found->assign(deletions.size(), false);
  if (deletions.empty()) return Status::OK();
  using Key = std::tuple<std::string, std::string, std::string>;  // account, uidl form, sha256
  std::map<Key, std::vector<size_t>> wanted;
  for (size_t i = 0; i < deletions.size(); ++i) {
    const AuditDeletion& d = deletions[i];
    wanted[{d.account, EncodeUidl(d.uidl), d.sha256}].push_back(i);
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::ifstream in(path_, std::ios::binary);
  if (!in) return Errno("cannot read", path_);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"event\":\"deleted\"") == std::string::npos) continue;
    try {
      Poco::JSON::Parser parser;
      const auto o = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
      const int64_t time = o->getValue<Poco::Int64>("unix_time");
      auto it = wanted.find({o->getValue<std::string>("account"), o->getValue<std::string>("uidl"),
                             o->getValue<std::string>("sha256")});
      if (it == wanted.end()) continue;
      for (size_t i : it->second) (*found)[i] = (*found)[i] || time >= not_before[i];
    } catch (const Poco::Exception&) {
      continue;  // a torn line of an append a crash interrupted
    }
  }
  if (in.bad()) return Errno("cannot read", path_);
  return Status::OK();
}

}  // namespace popvault
