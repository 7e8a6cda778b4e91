// Internal entry point of the session logic, separated from socket setup so
// tests can run a whole session over a scripted Transport.
#pragma once

#include <memory>

#include "pop3/pop3_session.h"
#include "pop3/transport.h"
#include "popvault/status.h"

namespace popvault::pop3 {

// Runs everything Pop3Session::Open does after connecting: greeting, CAPA,
// STLS when options.tls is kStartTls (then CAPA again), authentication, CAPA.
// `transport` must be connected, and already secure for TlsMode::kImplicit.
// On success stores the session in *session; on error leaves it untouched
// and drops the connection without QUIT. Errors name host:port. *info as
// for Pop3Session::Open.
Status OpenSession(const Pop3Options& options, std::unique_ptr<Transport> transport,
                   std::unique_ptr<Pop3Session>* session, Pop3Session::OpenInfo* info = nullptr);

}  // namespace popvault::pop3
