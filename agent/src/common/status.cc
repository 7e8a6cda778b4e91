#include "popvault/status.h"

namespace popvault {

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not found";
    case Code::kCorruption:
      return "corruption";
    case Code::kIOError:
      return "I/O error";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kNotSupported:
      return "not supported";
    case Code::kProtocol:
      return "protocol error";
    case Code::kNetwork:
      return "network error";
    case Code::kTimeout:
      return "timeout";
    case Code::kTls:
      return "TLS error";
    case Code::kSecurity:
      return "refused by security policy";
    case Code::kAuthFailed:
      return "authentication failed";
    case Code::kInUse:
      return "mailbox in use";
    case Code::kLoginDelay:
      return "login delay";
    case Code::kSysTemp:
      return "temporary server error";
    case Code::kSysPerm:
      return "permanent server error";
    case Code::kServerError:
      return "server error";
    case Code::kAborted:
      return "aborted";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace popvault
