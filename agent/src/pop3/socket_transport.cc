#include "pop3/socket_transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HostEntry.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace popvault::pop3 {
namespace {

using Clock = std::chrono::steady_clock;

// Once per process: SIGPIPE ignored so that a write to a connection the
// server closed is an error return (EPIPE), not process death. Our plain
// writes pass MSG_NOSIGNAL; OpenSSL writes with plain send() without it.
void InitializeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    OPENSSL_init_ssl(0, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
  });
}

std::string Seconds(std::chrono::seconds s) { return std::to_string(s.count()) + " s"; }

// The reasons in this thread's OpenSSL error queue, which it empties.
std::string OpenSslErrors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    char full[256];
    if (reason == nullptr) {
      ERR_error_string_n(e, full, sizeof full);
      reason = full;
    }
    if (!text.empty()) text += "; ";
    text += reason;
  }
  return text.empty() ? "unknown TLS error" : text;
}

// "sha256:" + 64 lower-case hex digits of the certificate's DER encoding;
// empty if it cannot be computed.
std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    text += kHex[md[i] >> 4];
    text += kHex[md[i] & 0xf];
  }
  return text;
}

// The configured pin in canonical form (hex lower-cased), or empty if it is
// not "sha256:" + 64 hex digits.
std::string CanonicalPin(const std::string& pin) {
  static constexpr char kPrefix[] = "sha256:";
  const size_t prefix = sizeof kPrefix - 1;
  if (pin.size() != prefix + 64 || pin.compare(0, prefix, kPrefix) != 0) return "";
  std::string canonical = kPrefix;
  for (size_t i = prefix; i < pin.size(); ++i) {
    const char c = pin[i];
    if (c >= '0' && c <= '9') {
      canonical += c;
    } else if (c >= 'a' && c <= 'f') {
      canonical += c;
    } else if (c >= 'A' && c <= 'F') {
      canonical += static_cast<char>(c - 'A' + 'a');
    } else {
      return "";
    }
  }
  return canonical;
}

bool IsIpLiteral(const std::string& host) {
  Poco::Net::IPAddress ip;
  return Poco::Net::IPAddress::tryParse(host, ip);
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

class SocketTransport final : public Transport {
 public:
  SocketTransport(const Pop3Options& options, std::string pin, Poco::Net::StreamSocket socket)
      : host_(options.host),
        ca_file_(options.ca_file),
        pin_(std::move(pin)),
        connect_timeout_(options.connect_timeout),
        reply_timeout_(options.reply_timeout),
        idle_timeout_(options.idle_timeout),
        socket_(std::move(socket)),
        fd_(socket_.impl()->sockfd()) {}

  ~SocketTransport() override { Close(); }

  Status Read(char* buf, size_t cap, size_t* n, ReadWait wait) override {
    const bool reply = wait == ReadWait::kReply;
    const Clock::time_point deadline = Clock::now() + (reply ? reply_timeout_ : idle_timeout_);
    const int len = static_cast<int>(std::min<size_t>(cap, INT_MAX));
    for (;;) {
      if (closed_) return Status::Network("read: connection already closed");
      short want = POLLIN;
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int got = SSL_read(ssl_.get(), buf, len);
        if (got > 0) {
          *n = static_cast<size_t>(got);
          return Status::OK();
        }
        const int err = SSL_get_error(ssl_.get(), got);
        if (err == SSL_ERROR_ZERO_RETURN) {
          *n = 0;
          return Status::OK();
        }
        if (err == SSL_ERROR_WANT_WRITE) {
          want = POLLOUT;
        } else if (err != SSL_ERROR_WANT_READ) {
          return TlsIoError("read", err);
        }
      } else {
        const ssize_t got = ::recv(fd_, buf, static_cast<size_t>(len), 0);
        if (got >= 0) {
          *n = static_cast<size_t>(got);
          return Status::OK();
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          return Status::Network(std::string("read: ") + std::strerror(errno));
        }
      }
      if (!WaitFor(want, deadline)) {
        return reply ? Status::Timeout("no reply within reply_timeout (" + Seconds(reply_timeout_) +
                                       ")")
                     : Status::Timeout("reply stalled: nothing received for idle_timeout (" +
                                       Seconds(idle_timeout_) + ")");
      }
    }
  }

  Status Write(const char* data, size_t n) override {
    Clock::time_point deadline = Clock::now() + reply_timeout_;
    while (n > 0) {
      if (closed_) return Status::Network("write: connection already closed");
      const int len = static_cast<int>(std::min<size_t>(n, INT_MAX));
      short want = POLLOUT;
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int sent = SSL_write(ssl_.get(), data, len);
        if (sent > 0) {
          data += sent;
          n -= static_cast<size_t>(sent);
          deadline = Clock::now() + reply_timeout_;
          continue;
        }
        const int err = SSL_get_error(ssl_.get(), sent);
        if (err == SSL_ERROR_WANT_READ) {
          want = POLLIN;
        } else if (err != SSL_ERROR_WANT_WRITE) {
          return TlsIoError("write", err);
        }
      } else {
        const ssize_t sent = ::send(fd_, data, static_cast<size_t>(len), MSG_NOSIGNAL);
        if (sent > 0) {
          data += sent;
          n -= static_cast<size_t>(sent);
          deadline = Clock::now() + reply_timeout_;
          continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          return Status::Network(std::string("write: ") +
                                 (sent == 0 ? "nothing sent" : std::strerror(errno)));
        }
      }
      if (!WaitFor(want, deadline)) {
        return Status::Timeout("write: the server accepted no data within reply_timeout (" +
                               Seconds(reply_timeout_) + ")");
      }
    }
    return Status::OK();
  }

  Status StartTls() override { return Handshake(Clock::now() + connect_timeout_); }

  bool secure() const override { return secure_; }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    if (ssl_ != nullptr && secure_ && !tls_failed_) {
      // One non-blocking close_notify, a courtesy at the TLS layer; not a
      // POP3 command. Its failure does not matter.
      ERR_clear_error();
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
    }
    try {
      socket_.close();
    } catch (...) {
      // Dropping the connection is the goal.
    }
  }

  // The TLS handshake and server verification, finished by `deadline`. On
  // failure the connection is closed.
  Status Handshake(Clock::time_point deadline) {
    Status status = DoHandshake(deadline);
    if (!status.ok()) {
      tls_failed_ = true;
      Close();
    }
    return status;
  }

 private:
  Status DoHandshake(Clock::time_point deadline) {
    if (closed_) return Status::Network("TLS handshake: connection already closed");
    if (ssl_ != nullptr) return Status::Tls("TLS handshake: TLS is already active");
    POPVAULT_RETURN_IF_ERROR(MakeSsl());
    for (;;) {
      ERR_clear_error();
      const int rc = SSL_connect(ssl_.get());
      if (rc == 1) break;
      const int err = SSL_get_error(ssl_.get(), rc);
      short want;
      if (err == SSL_ERROR_WANT_READ) {
        want = POLLIN;
      } else if (err == SSL_ERROR_WANT_WRITE) {
        want = POLLOUT;
      } else {
        return HandshakeError(err);
      }
      if (!WaitFor(want, deadline)) {
        return Status::Timeout("TLS handshake: not finished within connect_timeout (" +
                               Seconds(connect_timeout_) + ")");
      }
    }
    // Checked inside the handshake already (VerifyCertificate); a second
    // look costs nothing.
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (cert == nullptr) return Status::Tls("TLS handshake: the server sent no certificate");
    const long verified = SSL_get_verify_result(ssl_.get());
    if (verified != X509_V_OK) {
      return Status::Tls("TLS handshake: certificate verification failed: " +
                         std::string(X509_verify_cert_error_string(verified)));
    }
    if (!pin_.empty() && Fingerprint(cert) != pin_) {
      return Status::Tls("TLS handshake: certificate fingerprint mismatch");
    }
    secure_ = true;
    return Status::OK();
  }

  Status MakeSsl() {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (ctx_ == nullptr) return Status::Tls("TLS setup: " + OpenSslErrors());
    SSL_CTX* ctx = ctx_.get();
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
      return Status::Tls("TLS setup: " + OpenSslErrors());
    }
    // A connection cut without close_notify reads as end of stream: POP3's
    // own framing (the terminating dot) detects a truncated reply.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    // Read whole socket buffers, not a 5-byte record header and then the
    // record: servers send small records, and a RETR of 200 MB took over 100k
    // read() calls without this. Safe with poll(): Read() always tries
    // SSL_read, which serves buffered records, before it waits.
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    if (pin_.empty()) {
      const int loaded = ca_file_.empty()
                             ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, ca_file_.c_str(), nullptr);
      if (loaded != 1) {
        return Status::Tls("cannot load the trusted CAs" +
                           (ca_file_.empty() ? std::string() : " from " + ca_file_) + ": " +
                           OpenSslErrors());
      }
    }
    // The whole server check happens in VerifyCertificate, inside the
    // handshake; with SSL_VERIFY_PEER its failure aborts the handshake.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_cert_verify_callback(ctx, &SocketTransport::VerifyCertificate, this);

    ssl_.reset(SSL_new(ctx));
    if (ssl_ == nullptr || SSL_set_fd(ssl_.get(), fd_) != 1) {
      return Status::Tls("TLS setup: " + OpenSslErrors());
    }
    const bool ip = IsIpLiteral(host_);
    // SNI: a host name, never an address literal (RFC 6066 §3).
    if (!ip && SSL_set_tlsext_host_name(ssl_.get(), host_.c_str()) != 1) {
      return Status::Tls("TLS setup: cannot send the server name " + host_);
    }
    if (pin_.empty()) {
      const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), host_.c_str())
                         : SSL_set1_host(ssl_.get(), host_.c_str());
      if (set != 1) return Status::Tls("TLS setup: cannot check certificates for " + host_);
    }
    return Status::OK();
  }

  // Replaces OpenSSL's chain verification (SSL_CTX_set_cert_verify_callback):
  // records the fingerprint of the server certificate, then either compares
  // it with the pin or runs the standard verification (chain against the
  // trusted CAs, dates, host name as set on the SSL).
  static int VerifyCertificate(X509_STORE_CTX* store, void* arg) {
    auto* self = static_cast<SocketTransport*>(arg);
    self->seen_fingerprint_ = Fingerprint(X509_STORE_CTX_get0_cert(store));
    if (self->pin_.empty()) return X509_verify_cert(store);
    if (!self->seen_fingerprint_.empty() && self->seen_fingerprint_ == self->pin_) return 1;
    self->pin_mismatch_ = true;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }

  Status HandshakeError(int err) {
    const std::string seen = seen_fingerprint_.empty() ? "unknown" : seen_fingerprint_;
    if (pin_mismatch_) {
      ERR_clear_error();
      return Status::Tls("TLS handshake: certificate fingerprint mismatch: the server presented " +
                         seen + ", tls_fingerprint is " + pin_);
    }
    const long verified = SSL_get_verify_result(ssl_.get());
    if (verified != X509_V_OK) {
      ERR_clear_error();
      return Status::Tls("TLS handshake: certificate verification failed: " +
                         std::string(X509_verify_cert_error_string(verified)) +
                         " (server certificate " + seen + ")");
    }
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      // A reset or close here can be the server rejecting our TLS versions.
      return Status::Tls(std::string("TLS handshake: ") +
                         (errno != 0 ? std::strerror(errno) : "connection closed by the server"));
    }
    std::string text = OpenSslErrors();
    if (text.find("protocol version") != std::string::npos ||
        text.find("unsupported protocol") != std::string::npos) {
      text += " (TLS 1.2 or later is required)";
    }
    return Status::Tls("TLS handshake: " + text);
  }

  Status TlsIoError(const char* what, int err) {
    tls_failed_ = true;
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      return Status::Network(std::string(what) + ": " +
                             (errno != 0 ? std::strerror(errno) : "connection closed"));
    }
    return Status::Tls(std::string(what) + ": " + OpenSslErrors());
  }

  // Waits until the socket is ready for `events` or `deadline` passes
  // (false). Errors and hang-ups count as ready: the next I/O call reports
  // them.
  bool WaitFor(short events, Clock::time_point deadline) const {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) return true;
    }
  }

  const std::string host_;
  const std::string ca_file_;
  const std::string pin_;  // canonical tls_fingerprint, or empty
  const std::chrono::seconds connect_timeout_;
  const std::chrono::seconds reply_timeout_;
  const std::chrono::seconds idle_timeout_;
  Poco::Net::StreamSocket socket_;  // owns the descriptor
  const int fd_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;  // declared after ctx_: freed first
  std::string seen_fingerprint_;       // of the certificate the server presented
  bool pin_mismatch_ = false;
  bool secure_ = false;
  bool tls_failed_ = false;  // no close_notify after a TLS error
  bool closed_ = false;
};

}  // namespace

Status ConnectFirst(const std::vector<Poco::Net::SocketAddress>& addresses,
                    std::chrono::milliseconds timeout, Poco::Net::StreamSocket* socket) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string failures;
  bool all_timed_out = true;
  for (size_t i = 0; i < addresses.size(); ++i) {
    // What is left is shared by the addresses not yet tried, so one that
    // swallows packets cannot use up the time of those after it.
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    const auto share = left / static_cast<int64_t>(addresses.size() - i);
    if (share.count() <= 0) break;
    std::string error;
    try {
      Poco::Net::StreamSocket attempt;
      attempt.connect(addresses[i],
                      Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(share.count())));
      attempt.setNoDelay(true);    // commands are small and each one waits for its reply
      attempt.setBlocking(false);  // every wait is our own poll() against a deadline
      *socket = attempt;
      return Status::OK();
    } catch (const Poco::TimeoutException&) {
      char waited[32];
      std::snprintf(waited, sizeof waited, "%.1f s", static_cast<double>(share.count()) / 1e6);
      error = std::string("no connection within ") + waited + " (connect_timeout " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
              " s" + (addresses.size() > 1 ? ", shared by the addresses" : "") + ")";
    } catch (const Poco::Exception& e) {
      error = e.displayText();
      all_timed_out = false;
    } catch (const std::exception& e) {
      error = e.what();
      all_timed_out = false;
    }
    failures += (failures.empty() ? "" : "; ") + addresses[i].toString() + ": " + error;
  }
  if (failures.empty()) failures = "connect_timeout is used up";
  return all_timed_out ? Status::Timeout(failures) : Status::Network(failures);
}

Status ConnectSocketTransport(const Pop3Options& options, std::unique_ptr<Transport>* transport) {
  InitializeOnce();
  const std::string where = options.host + ":" + std::to_string(options.port);
  const std::string pin = CanonicalPin(options.tls_fingerprint);
  if (!options.tls_fingerprint.empty() && pin.empty()) {
    return Status::InvalidArgument(where +
                                   ": tls_fingerprint must be \"sha256:\" and 64 hex digits");
  }
  std::vector<Poco::Net::SocketAddress> addresses;
  try {
    Poco::Net::IPAddress literal;
    if (Poco::Net::IPAddress::tryParse(options.host, literal)) {
      addresses.emplace_back(literal, options.port);
    } else {
      const Poco::Net::HostEntry entry = Poco::Net::DNS::hostByName(options.host);
      for (const Poco::Net::IPAddress& a : entry.addresses())
        addresses.emplace_back(a, options.port);
    }
  } catch (const Poco::Exception& e) {
    return Status::Network(where + ": cannot resolve the host name: " + e.displayText());
  }
  if (addresses.empty()) return Status::Network(where + ": the host name has no address");
  const Clock::time_point deadline = Clock::now() + options.connect_timeout;
  Poco::Net::StreamSocket socket;
  POPVAULT_RETURN_IF_ERROR(
      ConnectFirst(addresses, options.connect_timeout, &socket).WithContext(where + ": connect"));
  auto result = std::make_unique<SocketTransport>(options, pin, std::move(socket));
  if (options.tls == TlsMode::kImplicit) {
    POPVAULT_RETURN_IF_ERROR(result->Handshake(deadline).WithContext(where));
  }
  *transport = std::move(result);
  return Status::OK();
}

}  // namespace popvault::pop3
