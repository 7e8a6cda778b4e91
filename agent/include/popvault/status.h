// Status: the result of an operation that can fail.
//
// Every fallible call across a module or plugin boundary returns a Status
// instead of throwing. OK carries no message; an error carries a code from a
// closed set and a one-line, human-readable message that names what failed
// (file, account, store, key, server reply). Messages never contain secrets.
//
// Status is a small value type; copying is cheap enough for error paths.
#pragma once

#include <string>
#include <utility>

namespace popvault {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // the key / message / file does not exist
    kCorruption,       // stored data failed a check (hash, format, decompression)
    kIOError,          // local or remote storage I/O failed
    kInvalidArgument,  // bad config value, bad command-line argument
    kNotSupported,     // the peer or backend lacks a required feature
    kProtocol,         // the POP3 server broke the protocol (malformed reply)
    kNetwork,          // connection refused, reset, closed
    kTimeout,          // no progress within the configured time
    kTls,              // TLS handshake or certificate verification failed
    kSecurity,         // refused by local security policy (e.g. password in clear)
    kAuthFailed,       // credentials rejected ([AUTH] or plain -ERR on login)
    kInUse,            // [IN-USE]: maildrop locked by another session
    kLoginDelay,       // [LOGIN-DELAY]: logged in too recently
    kSysTemp,          // [SYS/TEMP]: transient server-side failure
    kSysPerm,          // [SYS/PERM]: permanent server-side failure
    kServerError,      // -ERR without a response code
    kAborted,          // stopped on purpose (shutdown, crash-test hook)
    kTooLarge,         // over a configured size limit (max_message_size)
  };

  Status() = default;
  static Status OK() { return Status(); }

  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotSupported(std::string m) { return Status(Code::kNotSupported, std::move(m)); }
  static Status Protocol(std::string m) { return Status(Code::kProtocol, std::move(m)); }
  static Status Network(std::string m) { return Status(Code::kNetwork, std::move(m)); }
  static Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
  static Status Tls(std::string m) { return Status(Code::kTls, std::move(m)); }
  static Status Security(std::string m) { return Status(Code::kSecurity, std::move(m)); }
  static Status Aborted(std::string m) { return Status(Code::kAborted, std::move(m)); }
  static Status TooLarge(std::string m) { return Status(Code::kTooLarge, std::move(m)); }

  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not found: message abc..." style text for logs and the CLI.
  std::string ToString() const;

  // Returns a copy whose message is "context: message" (no-op when OK).
  Status WithContext(const std::string& context) const;

  static const char* CodeName(Code code);

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Defined inline so that plugins need only this header.
inline const char* Status::CodeName(Code code) {
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
    case Code::kTooLarge:
      return "too large";
  }
  return "unknown";
}

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

inline Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace popvault

// Returns early from the enclosing function when `expr` is not OK.
#define POPVAULT_RETURN_IF_ERROR(expr)       \
  do {                                       \
    ::popvault::Status _pv_status = (expr);  \
    if (!_pv_status.ok()) return _pv_status; \
  } while (0)
