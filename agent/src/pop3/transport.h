// Transport: the byte pipe under a POP3 session.
//
// The session and the reply reader see only this interface, so tests can
// drive them with scripted bytes instead of a socket. The production
// implementation is a Poco socket (socket_transport.h).
//
// Error messages do not name the server: the caller adds host:port and the
// command.
//
// Not thread-safe: one thread uses a transport.
#pragma once

#include <cstddef>

#include "popvault/status.h"

namespace popvault::pop3 {

// What a Read waits for, which selects its timeout (Pop3Options).
enum class ReadWait {
  kReply,  // the first byte of a reply: reply_timeout
  kIdle,   // more of a reply that has started: idle_timeout
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Reads at least one and up to `cap` bytes into `buf`, blocking until some
  // arrive; *n = 0 means the peer closed the connection. kTimeout, naming the
  // timeout `wait` selects, if no byte arrives within it. Other errors:
  // kNetwork, kTls.
  virtual Status Read(char* buf, size_t cap, size_t* n, ReadWait wait) = 0;

  // Writes all `n` bytes or fails (kNetwork, kTimeout, kTls).
  virtual Status Write(const char* data, size_t n) = 0;

  // Starts TLS on the open connection (STLS): handshake and server
  // verification as for implicit TLS, within the connect timeout. kTls on any
  // failure, kTimeout if the handshake does not finish in time. The caller
  // discards whatever it read before the handshake.
  virtual Status StartTls() = 0;

  // True once the connection is encrypted and the server verified.
  virtual bool secure() const = 0;

  // Drops the connection without sending any POP3 command. Idempotent.
  virtual void Close() = 0;
};

}  // namespace popvault::pop3
