// The production Transport: a Poco TCP socket, optionally with TLS.
#pragma once

#include <memory>

#include "pop3/pop3_session.h"
#include "pop3/transport.h"
#include "popvault/status.h"

namespace popvault::pop3 {

// Connects to options.host:options.port within options.connect_timeout and,
// for TlsMode::kImplicit, completes the TLS handshake. The handshake, every
// read and every write then time out after options.reply_timeout (kTimeout);
// over TLS, Poco 1.11 may take up to about twice that to report a stalled
// read (the socket timeout, then its own retry loop).
//
// TLS always verifies the certificate chain (against options.ca_file, or the
// system trust store when it is empty) and that the certificate names
// options.host, requires TLS 1.2 or later, and never consults Poco's global
// SSLManager or its invalid-certificate handlers. Failures are kTls and name
// host:port. Connection failures are kNetwork or kTimeout.
//
// On success stores the transport in *transport; on error leaves it untouched.
Status ConnectSocketTransport(const Pop3Options& options, std::unique_ptr<Transport>* transport);

}  // namespace popvault::pop3
