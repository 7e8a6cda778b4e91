// Pop3Session: one authenticated POP3 session (RFC 1939, 2449, 2595), on Poco
// sockets. Our own client: Poco's POP3ClientSession has no UIDL, CAPA, STLS.
//
// Safety contract (RFC 1939 §6): the server removes messages marked with DELE
// only when QUIT succeeds. This class therefore never sends QUIT on its own:
// not from the destructor, not on an error. Any error leaves the session
// unusable (`broken()`), and the destructor or Abort() drops the connection,
// so the server rolls back every DELE of the session.
//
// Errors map server response codes to Status codes: [AUTH] -> kAuthFailed,
// [IN-USE] -> kInUse, [LOGIN-DELAY] -> kLoginDelay, [SYS/TEMP] -> kSysTemp,
// [SYS/PERM] -> kSysPerm, other -ERR -> kServerError (kAuthFailed during
// login). Malformed replies -> kProtocol; I/O -> kNetwork or kTimeout;
// handshake or certificate failure -> kTls. Messages name host:port and the
// command (never a password).
//
// Not thread-safe: one thread drives a session.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "popvault/byte_stream.h"
#include "popvault/status.h"

namespace popvault {

enum class TlsMode { kImplicit, kStartTls, kNone };

// How to log in. kAuto picks the strongest method the server offers after TLS
// (see pop3/sasl.h); any other value is used as asked or fails clearly.
// kUser is USER/PASS, kApop is APOP (only when asked: MD5 is weak), the rest
// are SASL mechanisms sent with AUTH (RFC 5034).
enum class AuthMethod {
  kAuto,
  kUser,
  kApop,
  kPlain,
  kLogin,
  kCramMd5,
  kScramSha1,
  kScramSha256,
  kXoauth2,
  kOauthBearer,
};

struct Pop3Options {
  std::string host;
  uint16_t port = 995;
  TlsMode tls = TlsMode::kImplicit;
  // PEM bundle of trusted CAs; empty means the system trust store.
  std::string ca_file;
  // "sha256:" + 64 lower-case hex digits: the SHA-256 of the server
  // certificate (DER). When set, the certificate must match it, and the CA
  // chain and host name are not checked (self-signed servers). Empty: chain
  // and host-name verification.
  std::string tls_fingerprint;
  std::string user;
  // The secret: a password, or with `oauth2` an OAuth2 access token. When
  // secret_command is set it is run through /bin/sh at every login and its
  // output (trimmed) is the secret instead (password_command,
  // oauth_token_command). Never logged, never part of an error message.
  std::string password;
  std::string secret_command;
  bool oauth2 = false;  // the secret is a bearer token: XOAUTH2 or OAUTHBEARER only
  AuthMethod auth = AuthMethod::kAuto;
  // Without TLS, credentials are sent only if this is true; otherwise Open
  // fails with kSecurity before sending any.
  bool allow_plaintext_auth = false;
  // Send RETR and DELE ahead in a bounded window when the server announces
  // PIPELINING (RFC 2449); lock-step otherwise or when false.
  bool pipelining = true;
  // With pipelining and PIPELINING announced before login, Open sends the
  // post-login CAPA, LIST and UIDL in the same write as the last line of
  // the login (after SCRAM has verified the server), and keeps the listing
  // for the first Listing(): two round trips less before the first RETR.
  // Off: CAPA after login on its own, and Listing() asks when called.
  bool prefetch_listing = true;
  // TCP connect plus TLS handshake.
  std::chrono::seconds connect_timeout{30};
  // Waiting for the first byte of a reply.
  std::chrono::seconds reply_timeout{120};
  // The longest silence inside a reply once it has started (a stalled RETR).
  std::chrono::seconds idle_timeout{60};
  // A RETR body longer than this ends the session with kTooLarge.
  uint64_t max_message_size = 256ull << 20;
};

struct UidlEntry {
  uint32_t msgno = 0;
  // Exact bytes after "msgno" and the run of spaces that follows it, line
  // ending excluded. Further spaces (inner or trailing) are kept: they are
  // part of what the server sent. Longer than RFC 1939's 70 octets is fine.
  std::string uidl;
};

struct ListEntry {
  uint32_t msgno = 0;
  uint64_t octets = 0;  // server's claim; not an integrity check (RFC 1939 §11)
};

class Pop3Session {
 public:
  // Enough to keep a 20 ms link busy with 9 KB messages; the commands are
  // about 3 KB, far below any socket buffer.
  static constexpr size_t kMaxInFlight = 256;
  // Bounds what a stop must read and discard.
  static constexpr uint64_t kMaxInFlightOctets = 8 << 20;

  // Connects, reads the greeting, CAPA, upgrades to TLS (implicit or STLS,
  // then CAPA again), authenticates and issues CAPA once more (with LIST and
  // UIDL: options.prefetch_listing). A -ERR to CAPA
  // means an RFC 1939-only server (no capabilities). tls = kStartTls without
  // STLS in CAPA is kNotSupported: never a silent downgrade. TLS always
  // verifies the chain (ca_file or system CAs) and the host name; TLS >= 1.2.
  // On success stores the session in *session; on error leaves it untouched
  // and the connection is dropped without QUIT. Thread-safe (independent
  // sessions may be opened concurrently).
  // *info (optional) gets what Open saw, also when it fails: a
  // [LOGIN-DELAY] refusal comes before any session exists, yet the caller
  // needs the LOGIN-DELAY the CAPA before login announced.
  struct OpenInfo {
    std::string login_delay;  // arguments of CAPA LOGIN-DELAY as of the last CAPA; "" if none
  };
  static Status Open(const Pop3Options& options, std::unique_ptr<Pop3Session>* session,
                     OpenInfo* info = nullptr);

  virtual ~Pop3Session() = default;

  // Capability names (upper-cased first word of each CAPA line) as of the
  // last CAPA, e.g. "UIDL", "PIPELINING", "STLS".
  virtual const std::set<std::string>& capabilities() const = 0;

  // The arguments of capability `name` (upper case) as of the last CAPA, e.g.
  // "900" for "LOGIN-DELAY 900"; empty if it has none or was not announced.
  // The default (for test doubles) knows no arguments.
  virtual std::string CapabilityArgument(const std::string& name) const {
    (void)name;
    return "";
  }

  // Replace *entries with the server's listing, in the server's order and
  // with duplicates kept (detecting them is the caller's job). Untouched on
  // error. Lines longer than 4096 octets or malformed -> kProtocol.
  // A server without UIDL (a bare -ERR to it, RFC 1939 makes it optional)
  // is kNotSupported and leaves the session usable; -ERR with a response
  // code is that code's error.
  virtual Status Uidl(std::vector<UidlEntry>* entries) = 0;
  virtual Status List(std::vector<ListEntry>* entries) = 0;
  // LIST, then UIDL, both sent in one write when the server allows
  // pipelining (a round trip less before the first RETR). A LIST failure is
  // returned as such; otherwise *sizes is filled and the result is Uidl's,
  // kNotSupported included. The first call returns what Open prefetched
  // (options.prefetch_listing), errors included; an error that left the
  // stream out of step has broken the session already.
  virtual Status Listing(std::vector<ListEntry>* sizes, std::vector<UidlEntry>* uidls);
  // Streams the message, dot-unstuffed and byte-exact, into `sink` in chunks
  // of at most 64 KiB; memory use does not depend on message or line length.
  // On error the sink may have received part of the message. A sink error is
  // returned (with context) and breaks the session; so does a body longer
  // than max_message_size (kTooLarge).
  virtual Status Retr(uint32_t msgno, ByteSink& sink) = 0;

  // RETR for each of `messages` (msgno and LIST octets), in order: message i
  // streams into the sink `begin(i)` returns (the caller's, used until end(i)
  // is called), then end(i) runs. With PIPELINING announced and
  // options.pipelining, later RETRs are sent before earlier replies are read:
  // at most kMaxInFlight commands, and beyond the first at most
  // kMaxInFlightOctets by LIST size, so the commands (a few hundred bytes)
  // never fill the socket buffer and replies already requested stay small.
  // Lock-step otherwise. An error from end(i) stops the loop and is
  // returned; the replies already requested are read and discarded first, so
  // the session stays usable. Other errors are as for Retr. The default
  // (test doubles) calls Retr for each message.
  virtual Status RetrEach(const std::vector<ListEntry>& messages,
                          const std::function<ByteSink&(size_t)>& begin,
                          const std::function<Status(size_t)>& end);

  // Marks one message for deletion at QUIT.
  virtual Status Dele(uint32_t msgno) = 0;
  // DELE for each msgno, pipelined like RetrEach (without the octet bound).
  // Any -ERR is an error and breaks the session, so QUIT can no longer
  // commit any of them. The default calls Dele for each.
  virtual Status DeleEach(const std::vector<uint32_t>& msgnos);

  // The most commands the session has had outstanding at once (1 when
  // lock-step), for logs and tests.
  virtual size_t max_in_flight() const { return 1; }

  virtual Status Rset() = 0;
  // Commits the session's DELEs. OK only on "+OK" to QUIT. The connection is
  // closed afterwards either way; later calls fail with kAborted.
  virtual Status Quit() = 0;
  // Drops the connection without QUIT: the server deletes nothing. Allowed
  // in any state; later calls fail with kAborted.
  virtual void Abort() = 0;
  // True after any error (including -ERR replies): every later call fails
  // with kAborted, and only Abort() or destruction make sense.
  virtual bool broken() const = 0;
};

}  // namespace popvault
