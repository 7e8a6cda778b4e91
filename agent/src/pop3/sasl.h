// Logging in: choosing the method, fetching the secret, and the AUTH
// dialogue of RFC 5034.
//
// PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256 come from GNU SASL
// (libgsasl, as in mpop); XOAUTH2 and OAUTHBEARER (RFC 7628), which GNU SASL
// lacks, are formatted here. The session owns the connection; this module
// sees it only through AuthChannel.
//
// Secrets never appear in a Status message, a log line or an exception.
// Not thread-safe per call; independent calls may run concurrently.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <string_view>

#include "pop3/pop3_session.h"
#include "popvault/status.h"

namespace popvault::pop3 {

// The wire name of a SASL method ("SCRAM-SHA-256"); "USER" and "APOP" for
// those two; "auto" for kAuto.
std::string AuthMethodName(AuthMethod method);

// The method to use. `offered` holds the upper-cased mechanism names of the
// CAPA "SASL" line (empty when the server has none), `user_offered` whether
// CAPA lists USER (or the server has no CAPA at all), `apop_offered` whether
// the greeting has an APOP timestamp.
//
// kAuto: with options.oauth2, OAUTHBEARER then XOAUTH2; else the strongest
// password method offered: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN,
// LOGIN, then USER/PASS (never APOP). An explicit method must be offered
// (USER is assumed offered when CAPA is missing) and fit the secret (a token
// method needs oauth2 and the reverse). Otherwise kNotSupported, naming what
// the server offers.
Status ChooseAuthMethod(const Pop3Options& options, const std::set<std::string>& offered,
                        bool user_offered, bool apop_offered, AuthMethod* method);

// options.password, or the output of options.secret_command (run through
// /bin/sh -c with no stdin, within 60 s; first line, surrounding white space
// trimmed). A command that fails, times out or prints nothing is
// kInvalidArgument naming the command's exit status, never its output (nor
// the command line, which may hold a secret of its own).
Status FetchSecret(const Pop3Options& options, std::string* secret);

// FetchSecret's runner with the time limit as a parameter (tests use a short
// one). `key` names the command in messages ("password_command"). The child
// runs in its own process group with stdin from /dev/null, stderr inherited
// and no other descriptors; on time-out the whole group is killed.
Status RunSecretCommand(const std::string& command, const std::string& key,
                        std::chrono::milliseconds limit, std::string* secret);

// The session side of the AUTH dialogue.
class AuthChannel {
 public:
  virtual ~AuthChannel() = default;
  // Sends one command line (CRLF added). `shown` stands for it in messages.
  virtual Status Send(const std::string& line, const std::string& shown) = 0;
  // Sends the last line of the login: the server answers it with +OK or
  // -ERR, never with a challenge. The session may send further commands in
  // the same write (pipelining); the default sends the line alone.
  virtual Status SendLast(const std::string& line, const std::string& shown) {
    return Send(line, shown);
  }
  // Reads one reply line without its line ending: "+OK ...", "-ERR ..." or
  // a "+ base64" continuation.
  virtual Status ReadLine(std::string* line) = 0;
};

// The AUTH command line (without CRLF) for `mechanism` with the raw (not yet
// base64) initial response: "AUTH MECH base64", "AUTH MECH =" when it is
// empty, or "AUTH MECH" alone when the line with its CRLF would exceed 255
// octets (RFC 5034 §4); the response then answers the first "+" challenge.
std::string AuthCommandLine(std::string_view mechanism, std::string_view initial_response);

// Runs "AUTH <mechanism>" for a SASL `method` with `user` and `secret`.
// The initial response goes on the AUTH line ("=" when empty, RFC 5034 §4)
// unless that line would exceed 255 octets; then "AUTH mech" goes alone and
// the response answers the first "+" challenge. A challenge the mechanism
// cannot answer is cancelled with "*" and reported. A final "-ERR" maps to a
// Status as for PASS (ErrorStatus with login = true; response codes such as
// [IN-USE] win). XOAUTH2/OAUTHBEARER error challenges (base64 JSON) are
// answered as their specifications ask (XOAUTH2: an empty line; OAUTHBEARER:
// a single %x01, RFC 7628 §3.2.3) and reported with the server's status.
// LOGIN and CRAM-MD5 send no initial response (the server speaks first).
// SCRAM must end with the server's signature verified: a signature that does
// not verify is kAuthFailed (after "*"), a +OK before it kProtocol. The line
// that completes a password mechanism goes through SendLast (after SCRAM's
// verified signature, so nothing is pipelined to an unproven server); the
// token mechanisms never use it, since a failure there takes a challenge. `where` ("host:port")
// prefixes messages; OAUTHBEARER also takes its host= and port= from it. Challenges longer than
// kMaxLineOctets and more than 8 round trips are refused.
Status SaslAuthenticate(AuthChannel& channel, AuthMethod method, const std::string& user,
                        const std::string& secret, const std::string& where);

}  // namespace popvault::pop3
