#include "pop3/sasl.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Exception.h>
#include <fcntl.h>
#include <gsasl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "pop3/protocol.h"

extern char** environ;

namespace popvault::pop3 {
namespace {

// RFC 2449 §4: a command line, CRLF included, is at most 255 octets.
constexpr size_t kMaxCommandOctets = 255;
// No mechanism here needs more than three challenges (SCRAM); a server that
// keeps sending them is refused rather than followed.
constexpr int kMaxChallenges = 8;
// What a secret command may print before we stop keeping it (the rest is
// read and dropped so the command is not blocked on a full pipe).
constexpr size_t kMaxCommandOutput = 64 * 1024;
// How much of an OAuth2 error status we quote.
constexpr size_t kMaxQuotedError = 200;

bool IsSasl(AuthMethod method) {
  switch (method) {
    case AuthMethod::kPlain:
    case AuthMethod::kLogin:
    case AuthMethod::kCramMd5:
    case AuthMethod::kScramSha1:
    case AuthMethod::kScramSha256:
    case AuthMethod::kXoauth2:
    case AuthMethod::kOauthBearer:
      return true;
    case AuthMethod::kAuto:
    case AuthMethod::kUser:
    case AuthMethod::kApop:
      return false;
  }
  return false;
}

bool IsToken(AuthMethod method) {
  return method == AuthMethod::kXoauth2 || method == AuthMethod::kOauthBearer;
}

bool IsScram(AuthMethod method) {
  return method == AuthMethod::kScramSha1 || method == AuthMethod::kScramSha256;
}

// LOGIN and CRAM-MD5 start with a server challenge; the others send an
// initial response. (Dovecot would take LOGIN's user name as one, other
// servers do not.)
bool ClientFirst(AuthMethod method) {
  return method != AuthMethod::kLogin && method != AuthMethod::kCramMd5;
}

// Best effort: buffers that held a secret are cleared before release.
void Wipe(std::string* s) {
  if (!s->empty()) explicit_bzero(s->data(), s->size());
  s->clear();
}

std::string Base64Encode(std::string_view data) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder.write(data.data(), static_cast<std::streamsize>(data.size()));
  encoder.close();
  return out.str();
}

// Strict: only the base64 alphabet, whole quanta, padding only at the end.
// (Poco's decoder would skip white space and stop at garbage.)
bool Base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      if (i + 2 < text.size()) return false;
      ++padding;
    } else if (padding > 0 || !(isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) {
      return false;
    }
  }
  try {
    std::istringstream in{std::string(text)};
    Poco::Base64Decoder decoder(in);
    out->assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
  } catch (const Poco::Exception&) {
    return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  const char* space = " \t\r\n\v\f";
  const size_t begin = s.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

bool HasControl(std::string_view s, bool allow_tab) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && !(allow_tab && c == '\t')) || u == 0x7f) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Mechanisms

class Mechanism {
 public:
  virtual ~Mechanism() = default;
  // The response to `challenge`; for a client-first mechanism the first call
  // (with an empty challenge) gives the initial response.
  virtual Status Step(std::string_view challenge, std::string* response) = 0;
  // True once the client has nothing left to say or check: only +OK or -ERR
  // may follow.
  virtual bool complete() const = 0;
  // A challenge after completion: OAuth2 error statuses are answered (and
  // their text kept in *error); anything else is unexpected (false).
  virtual bool AnswerError(std::string_view challenge, std::string* response, std::string* error) {
    (void)challenge;
    (void)response;
    (void)error;
    return false;
  }
};

// Whether the response just computed is the login's last line. Password
// mechanisms end when the client is done (SCRAM: server signature checked);
// a token mechanism's failure comes as a challenge that must be answered.
bool Last(AuthMethod method, const Mechanism& mechanism) {
  return !IsToken(method) && mechanism.complete();
}

// One process-wide GNU SASL context. gsasl_init sets up the library's crypto
// backend and registers the mechanisms; the GNU SASL manual does not promise
// that concurrent initialisations are safe, and the daemon logs in from
// several worker threads at once. A function-local static is initialised
// exactly once even under concurrent first calls (C++11 [stmt.dcl]), and
// afterwards the context is only read: no callback is installed on it, every
// property lives in the per-login Gsasl_session. It is never freed (a
// gsasl_done at exit could race a worker thread still logging in).
Gsasl* SharedGsasl(int* rc) {
  struct Holder {
    Gsasl* ctx = nullptr;
    int rc = GSASL_OK;
    Holder() { rc = gsasl_init(&ctx); }
  };
  static const Holder holder;
  *rc = holder.rc;
  return holder.rc == GSASL_OK ? holder.ctx : nullptr;
}

class GsaslMechanism : public Mechanism {
 public:
  explicit GsaslMechanism(AuthMethod method) : method_(method) {}
  ~GsaslMechanism() override {
    if (session_ != nullptr) gsasl_finish(session_);
  }

  Status Start(const std::string& name, const std::string& user, const std::string& secret) {
    if (user.find('\0') != std::string::npos || secret.find('\0') != std::string::npos) {
      return Status::InvalidArgument("the user name or the secret contains a NUL byte");
    }
    int rc = GSASL_OK;
    Gsasl* ctx = SharedGsasl(&rc);
    if (ctx == nullptr) {
      return Status::NotSupported(std::string("GNU SASL did not initialise: ") +
                                  gsasl_strerror(rc));
    }
    rc = gsasl_client_start(ctx, name.c_str(), &session_);
    if (rc != GSASL_OK) {
      session_ = nullptr;
      return Status::NotSupported("GNU SASL cannot do " + name + ": " + gsasl_strerror(rc));
    }
    if (gsasl_property_set(session_, GSASL_AUTHID, user.c_str()) != GSASL_OK ||
        gsasl_property_set(session_, GSASL_PASSWORD, secret.c_str()) != GSASL_OK) {
      return Status::NotSupported("GNU SASL: out of memory");
    }
    return Status::OK();
  }

  Status Step(std::string_view challenge, std::string* response) override {
    char* output = nullptr;
    size_t output_len = 0;
    const int rc = gsasl_step(session_, challenge.data(), challenge.size(), &output, &output_len);
    if (rc == GSASL_OK || rc == GSASL_NEEDS_MORE) {
      if (output != nullptr) {
        response->assign(output, output_len);
        explicit_bzero(output, output_len);
      } else {
        response->clear();
      }
      gsasl_free(output);
      complete_ = rc == GSASL_OK;
      return Status::OK();
    }
    gsasl_free(output);
    if (rc == GSASL_AUTHENTICATION_ERROR && IsScram(method_)) {
      return Status(Status::Code::kAuthFailed,
                    "the server's SCRAM signature does not verify (it does not know the "
                    "password: wrong server or a man in the middle)");
    }
    return Status::Protocol(std::string("GNU SASL rejected the server's challenge: ") +
                            gsasl_strerror(rc));
  }

  bool complete() const override { return complete_; }

 private:
  const AuthMethod method_;
  Gsasl_session* session_ = nullptr;
  bool complete_ = false;
};

// XOAUTH2 (Google, Microsoft) and OAUTHBEARER (RFC 7628): one message from
// the client carrying the bearer token. GNU SASL 2.2 has neither.
class TokenMechanism : public Mechanism {
 public:
  TokenMechanism(AuthMethod method, std::string message)
      : method_(method), message_(std::move(message)) {}
  ~TokenMechanism() override { Wipe(&message_); }

  Status Step(std::string_view challenge, std::string* response) override {
    (void)challenge;  // only the first call, which has none
    *response = message_;
    Wipe(&message_);
    sent_ = true;
    return Status::OK();
  }

  bool complete() const override { return sent_; }

  bool AnswerError(std::string_view challenge, std::string* response, std::string* error) override {
    if (answered_error_) return false;
    answered_error_ = true;
    std::string text = Printable(Trim(challenge));
    if (text.size() > kMaxQuotedError) text = text.substr(0, kMaxQuotedError) + "...";
    *error = text.empty() ? "an empty error challenge" : text;
    // Google's XOAUTH2 wants an empty response; RFC 7628 §3.2.3 a single
    // %x01. The server then ends with -ERR.
    *response = method_ == AuthMethod::kOauthBearer ? std::string("\x01") : std::string();
    return true;
  }

 private:
  const AuthMethod method_;
  std::string message_;
  bool sent_ = false;
  bool answered_error_ = false;
};

// RFC 5801 saslname: ',' and '=' escaped.
std::string SaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

Status MakeMechanism(AuthMethod method, const std::string& user, const std::string& secret,
                     const std::string& where, std::unique_ptr<Mechanism>* mechanism) {
  if (!IsToken(method)) {
    auto gsasl = std::make_unique<GsaslMechanism>(method);
    POPVAULT_RETURN_IF_ERROR(gsasl->Start(AuthMethodName(method), user, secret));
    *mechanism = std::move(gsasl);
    return Status::OK();
  }
  // A control character would end a field early: the server would read
  // something else than what was configured.
  if (HasControl(user, false)) {
    return Status::InvalidArgument("the user name contains a control character");
  }
  if (HasControl(secret, false)) {
    return Status::InvalidArgument("the OAuth2 token contains a control character (not shown)");
  }
  std::string message;
  if (method == AuthMethod::kXoauth2) {
    message = "user=" + user + "\x01" + "auth=Bearer " + secret + "\x01\x01";
  } else {
    message = "n," + (user.empty() ? std::string() : "a=" + SaslName(user)) + ",";
    // where is "host:port" (host may itself hold colons: IPv6).
    const size_t colon = where.rfind(':');
    if (colon != std::string::npos && colon > 0 && colon + 1 < where.size() &&
        where.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      message += "\x01host=" + where.substr(0, colon) + "\x01port=" + where.substr(colon + 1);
    }
    message +=
        "\x01"
        "auth=Bearer " +
        secret + "\x01\x01";
  }
  *mechanism = std::make_unique<TokenMechanism>(method, std::move(message));
  Wipe(&message);
  return Status::OK();
}

bool IsChallenge(std::string_view line) {
  return line == "+" || (line.size() >= 2 && line[0] == '+' && line[1] == ' ');
}

// Cancels the exchange (RFC 5034 §4: "*"), reads the server's -ERR so nothing
// is left unread, and returns `reason` under `context`.
Status Cancel(AuthChannel& channel, const std::string& context, const Status& reason) {
  const Status sent = channel.Send("*", "*");
  if (sent.ok()) {
    std::string ignored;
    (void)channel.ReadLine(&ignored);
  }
  return reason.WithContext(context + ": cancelled");
}

std::string OfferedList(const std::set<std::string>& offered, bool user_offered,
                        bool apop_offered) {
  std::string list;
  if (!offered.empty()) {
    list = "SASL";
    for (const std::string& m : offered) list += " " + m;
  }
  if (user_offered) list += list.empty() ? "USER" : ", USER";
  if (apop_offered) list += list.empty() ? "APOP" : ", APOP";
  return list.empty() ? "no login method at all" : list;
}

std::string LowerName(AuthMethod method) {
  std::string name = AuthMethodName(method);
  for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return name;
}

// Seconds, or milliseconds below one second, for messages.
std::string Duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

std::string AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kAuto:
      return "auto";
    case AuthMethod::kUser:
      return "USER";
    case AuthMethod::kApop:
      return "APOP";
    case AuthMethod::kPlain:
      return "PLAIN";
    case AuthMethod::kLogin:
      return "LOGIN";
    case AuthMethod::kCramMd5:
      return "CRAM-MD5";
    case AuthMethod::kScramSha1:
      return "SCRAM-SHA-1";
    case AuthMethod::kScramSha256:
      return "SCRAM-SHA-256";
    case AuthMethod::kXoauth2:
      return "XOAUTH2";
    case AuthMethod::kOauthBearer:
      return "OAUTHBEARER";
  }
  return "unknown";
}

Status ChooseAuthMethod(const Pop3Options& options, const std::set<std::string>& offered,
                        bool user_offered, bool apop_offered, AuthMethod* method) {
  const std::string what = OfferedList(offered, user_offered, apop_offered);
  if (options.auth == AuthMethod::kAuto) {
    if (options.oauth2) {
      for (AuthMethod m : {AuthMethod::kOauthBearer, AuthMethod::kXoauth2}) {
        if (offered.count(AuthMethodName(m)) != 0) {
          *method = m;
          return Status::OK();
        }
      }
      return Status::NotSupported(
          "auth = auto with an OAuth2 token needs SASL OAUTHBEARER or XOAUTH2; the server "
          "offers " +
          what);
    }
    for (AuthMethod m : {AuthMethod::kScramSha256, AuthMethod::kScramSha1, AuthMethod::kCramMd5,
                         AuthMethod::kPlain, AuthMethod::kLogin}) {
      if (offered.count(AuthMethodName(m)) != 0) {
        *method = m;
        return Status::OK();
      }
    }
    if (user_offered) {
      *method = AuthMethod::kUser;
      return Status::OK();
    }
    return Status::NotSupported(
        "auth = auto found no password login method (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, "
        "PLAIN, LOGIN, USER); the server offers " +
        what);
  }

  const AuthMethod wanted = options.auth;
  const std::string key = "auth = " + LowerName(wanted);
  if (IsToken(wanted) && !options.oauth2) {
    return Status::NotSupported(key + " sends an OAuth2 token, but the secret is a password");
  }
  if (!IsToken(wanted) && options.oauth2) {
    return Status::NotSupported(key + " sends a password, but the secret is an OAuth2 token");
  }
  bool ok = false;
  if (wanted == AuthMethod::kUser) {
    ok = user_offered;
  } else if (wanted == AuthMethod::kApop) {
    ok = apop_offered;
  } else {
    ok = offered.count(AuthMethodName(wanted)) != 0;
  }
  if (!ok) {
    return Status::NotSupported(key + ": the server does not offer " + AuthMethodName(wanted) +
                                "; it offers " + what);
  }
  *method = wanted;
  return Status::OK();
}

Status RunSecretCommand(const std::string& command, const std::string& key,
                        std::chrono::milliseconds limit, std::string* secret) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + limit;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return Status::IOError(key + ": pipe: " + strerror(errno));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  // Sockets, the ledger and the archive stay ours (the pipe is O_CLOEXEC).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so a time-out kills what the shell started too;
  // the daemon's blocked or ignored signals are not passed on.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::string sh_c = "-c";
  std::string sh = "sh";
  std::string cmd = command;
  char* argv[] = {sh.data(), sh_c.data(), cmd.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return Status::IOError(key + ": cannot start /bin/sh: " + strerror(rc));
  }

  std::string output;
  bool timed_out = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output (or an error: the exit status decides)
    if (output.size() < kMaxCommandOutput) output.append(buf, static_cast<size_t>(n));
    explicit_bzero(buf, sizeof buf);
  }
  close(fds[0]);

  int wstatus = 0;
  bool reaped = false;
  while (!timed_out) {  // the output ended; the shell normally exits right away
    const pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) {
      reaped = true;
      break;
    }
    if (r < 0 && errno != EINTR) {
      Wipe(&output);
      return Status::IOError(key + ": waitpid: " + strerror(errno));
    }
    if (Clock::now() >= deadline) timed_out = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!reaped) {
    // The whole group: sh and whatever it started. Only before the reap: the
    // unreaped leader keeps the group id from being reused.
    kill(-pid, SIGKILL);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  if (timed_out) {
    Wipe(&output);
    return Status::InvalidArgument(key + " did not finish within " + Duration(limit) +
                                   " and was killed");
  }
  if (WIFSIGNALED(wstatus)) {
    Wipe(&output);
    return Status::InvalidArgument(key + " was killed by signal " +
                                   std::to_string(WTERMSIG(wstatus)));
  }
  const int exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  if (exit_status != 0) {
    Wipe(&output);
    return Status::InvalidArgument(key + " failed (exit status " + std::to_string(exit_status) +
                                   ")");
  }
  const std::string_view line = Trim(std::string_view(output).substr(0, output.find('\n')));
  if (line.empty()) {
    Wipe(&output);
    return Status::InvalidArgument(key + " printed nothing on its first line (exit status 0)");
  }
  if (HasControl(line, /*allow_tab=*/true)) {
    Wipe(&output);
    return Status::InvalidArgument(key + " printed control characters (exit status 0)");
  }
  secret->assign(line);
  Wipe(&output);
  return Status::OK();
}

Status FetchSecret(const Pop3Options& options, std::string* secret) {
  if (options.secret_command.empty()) {
    *secret = options.password;
    return Status::OK();
  }
  return RunSecretCommand(options.secret_command,
                          options.oauth2 ? "oauth_token_command" : "password_command",
                          std::chrono::seconds(60), secret);
}

std::string AuthCommandLine(std::string_view mechanism, std::string_view initial_response) {
  std::string line = "AUTH " + std::string(mechanism);
  const std::string encoded =
      initial_response.empty() ? std::string("=") : Base64Encode(initial_response);
  if (line.size() + 1 + encoded.size() + 2 > kMaxCommandOctets) return line;
  return line + " " + encoded;
}

Status SaslAuthenticate(AuthChannel& channel, AuthMethod method, const std::string& user,
                        const std::string& secret, const std::string& where) {
  const std::string name = AuthMethodName(method);
  const std::string command = "AUTH " + name;
  const std::string context = where + ": " + command;
  if (!IsSasl(method)) return Status::InvalidArgument(context + ": not a SASL mechanism");

  std::unique_ptr<Mechanism> mechanism;
  POPVAULT_RETURN_IF_ERROR(
      MakeMechanism(method, user, secret, where, &mechanism).WithContext(context));

  // An initial response too long for the AUTH line waits for the first "+".
  std::optional<std::string> pending;
  if (ClientFirst(method)) {
    std::string initial;
    POPVAULT_RETURN_IF_ERROR(mechanism->Step("", &initial).WithContext(context));
    std::string line = AuthCommandLine(name, initial);
    const bool inline_response = line != command;
    if (inline_response) {
      Wipe(&initial);
    } else {
      pending = std::move(initial);
    }
    const std::string shown = inline_response ? command + " ****" : command;
    const Status sent = inline_response && Last(method, *mechanism) ? channel.SendLast(line, shown)
                                                                    : channel.Send(line, shown);
    Wipe(&line);
    if (!sent.ok()) {
      if (pending) Wipe(&*pending);
      return sent.WithContext(context);
    }
  } else {
    POPVAULT_RETURN_IF_ERROR(channel.Send(command, command).WithContext(context));
  }

  std::string oauth_error;  // an OAuth2 error status the server sent
  for (int challenges = 0;;) {
    std::string line;
    POPVAULT_RETURN_IF_ERROR(channel.ReadLine(&line).WithContext(context));
    if (IsChallenge(line)) {
      if (++challenges > kMaxChallenges) {
        return Cancel(
            channel, context,
            Status::Protocol("more than " + std::to_string(kMaxChallenges) + " challenges"));
      }
      if (line.size() > kMaxLineOctets) {
        return Cancel(channel, context,
                      Status::Protocol("a challenge longer than " + std::to_string(kMaxLineOctets) +
                                       " octets"));
      }
      std::string challenge;
      if (!Base64Decode(Trim(std::string_view(line).substr(1)), &challenge)) {
        return Cancel(channel, context,
                      Status::Protocol("a challenge that is not base64: \"" +
                                       Printable(line.substr(0, 80)) + "\""));
      }
      std::string response;
      if (pending) {
        // The server's empty challenge after a bare "AUTH MECH".
        response = std::move(*pending);
        pending.reset();
      } else if (!mechanism->complete()) {
        const Status stepped = mechanism->Step(challenge, &response);
        if (!stepped.ok()) return Cancel(channel, context, stepped);
      } else if (!mechanism->AnswerError(challenge, &response, &oauth_error)) {
        return Cancel(channel, context,
                      Status::Protocol("an unexpected challenge after the client's last response"));
      }
      std::string encoded = Base64Encode(response);
      Wipe(&response);
      const std::string shown = "(" + name + " response ****)";
      const Status sent = Last(method, *mechanism) ? channel.SendLast(encoded, shown)
                                                   : channel.Send(encoded, shown);
      Wipe(&encoded);
      POPVAULT_RETURN_IF_ERROR(sent.WithContext(context));
      continue;
    }

    Response response;
    POPVAULT_RETURN_IF_ERROR(ParseResponse(line, &response).WithContext(context));
    if (!response.ok) {
      Status failed = ErrorStatus(response, /*login_command=*/true, context);
      if (!oauth_error.empty()) {
        failed = Status(failed.code(), failed.message() + " (OAuth2 status: " + oauth_error + ")");
      }
      return failed;
    }
    if (pending || !mechanism->complete()) {
      if (pending) Wipe(&*pending);
      return Status::Protocol(
          context + ": the server replied +OK before the exchange was complete" +
          (IsScram(method) ? " (it never proved that it knows the password)" : ""));
    }
    return Status::OK();
  }
}

}  // namespace popvault::pop3
