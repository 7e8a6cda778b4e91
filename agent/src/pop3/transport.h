// Transport: the byte pipe under a POP3 session.
//
// The session and the reply reader see only this interface, so tests can
// drive them with scripted bytes instead of a socket. The production
// implementation is a Poco socket (socket_transport.h).
//
// Not thread-safe: one thread uses a transport.
#pragma once

#include <cstddef>

#include "popvault/status.h"

namespace popvault::pop3 {

class Transport {
 public:
  virtual ~Transport() = default;

  // Reads at least one and up to `cap` bytes into `buf`, blocking until some
  // arrive; *n = 0 means the peer closed the connection. Errors: kNetwork,
  // kTimeout, kTls.
  virtual Status Read(char* buf, size_t cap, size_t* n) = 0;

  // Writes all `n` bytes or fails (kNetwork, kTimeout, kTls).
  virtual Status Write(const char* data, size_t n) = 0;

  // Starts TLS on the open connection (STLS): handshake, certificate chain and
  // host-name verification. kTls on any failure. The caller discards whatever
  // it read before the handshake.
  virtual Status StartTls() = 0;

  // True once the connection is encrypted and the server verified.
  virtual bool secure() const = 0;

  // Drops the connection without sending any POP3 command. Idempotent.
  virtual void Close() = 0;
};

}  // namespace popvault::pop3
