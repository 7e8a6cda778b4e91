// The production Transport: a TCP socket, optionally with TLS (OpenSSL).
#pragma once

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <memory>
#include <vector>

#include "pop3/pop3_session.h"
#include "pop3/transport.h"
#include "popvault/status.h"

namespace popvault::pop3 {

// Connects to options.host:options.port and, for TlsMode::kImplicit,
// completes the TLS handshake, both within options.connect_timeout (name
// resolution excluded). A name with several addresses (IPv6 and IPv4, say)
// is tried address by address, in the resolver's order, until one accepts
// (ConnectFirst). StartTls gets a fresh connect_timeout for its
// handshake. Reads time out after options.reply_timeout (ReadWait::kReply) or
// options.idle_timeout (ReadWait::kIdle); a write that makes no progress
// fails after reply_timeout. The socket is non-blocking and every wait is one
// poll() against a deadline, so a timeout fires on time, over TLS too (no
// hidden retry loop).
//
// TLS requires TLS 1.2 or later and sends options.host as SNI unless it is an
// IP address literal. With options.tls_fingerprint empty, the certificate
// chain is verified against options.ca_file (or the system trust store when
// it is empty) and the certificate must name options.host; both are checked
// by OpenSSL inside the handshake. With tls_fingerprint set, the SHA-256 of
// the server certificate (DER) must equal it instead: the chain, its dates
// and the host name are not checked and ca_file is not read. Either way the
// check fails the handshake, before any POP3 byte is read or written. TLS
// errors are kTls and give the certificate fingerprint the server presented
// ("sha256:" + 64 lower-case hex), so a self-signed server can be pinned.
//
// ConnectSocketTransport's errors name host:port; the transport's later
// errors leave that to the caller (transport.h). Connection failures are
// kNetwork or kTimeout; a malformed tls_fingerprint is kInvalidArgument.
//
// On success stores the transport in *transport; on error leaves it untouched.
Status ConnectSocketTransport(const Pop3Options& options, std::unique_ptr<Transport>* transport);

// TCP-connects *socket (non-blocking afterwards, TCP_NODELAY) to the first of
// `addresses` that accepts, in order. Each attempt may take an equal share of
// what is left of `timeout`, so an address that drops packets does not use
// up the time of those after it. The error names every address tried and
// why it failed; kTimeout if all of them timed out, else kNetwork.
Status ConnectFirst(const std::vector<Poco::Net::SocketAddress>& addresses,
                    std::chrono::milliseconds timeout, Poco::Net::StreamSocket* socket);

}  // namespace popvault::pop3
