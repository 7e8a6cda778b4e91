#include "pop3/socket_transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <exception>
#include <mutex>
#include <string>

namespace popvault::pop3 {
namespace {

// Once per process: OpenSSL via Poco, and SIGPIPE ignored so that a write to a
// connection the server closed is an error return (EPIPE), not process death.
// OpenSSL writes with plain send(), without MSG_NOSIGNAL.
void InitializeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    Poco::Net::initializeSSL();
    std::signal(SIGPIPE, SIG_IGN);
  });
}

Poco::Timespan ToTimespan(std::chrono::seconds s) {
  return Poco::Timespan(static_cast<long>(s.count()), 0);
}

// Maps the exception in flight to a Status. During a handshake every failure
// other than a timeout is a TLS failure (a reset can be the server rejecting
// our protocol versions).
Status CurrentExceptionStatus(const std::string& what, bool in_handshake) {
  try {
    throw;
  } catch (const Poco::TimeoutException&) {
    return Status::Timeout(what + ": no response in time");
  } catch (const Poco::Net::SSLException& e) {
    return Status::Tls(what + ": " + e.displayText());
  } catch (const Poco::Exception& e) {
    std::string text = what + ": " + e.displayText();
    return in_handshake ? Status::Tls(text) : Status::Network(text);
  } catch (const std::exception& e) {
    std::string text = what + ": " + e.what();
    return in_handshake ? Status::Tls(text) : Status::Network(text);
  }
}

// A client context that verifies the server's chain and name inside OpenSSL,
// during the handshake. Poco's own post-handshake name check is not enough:
// in Poco 1.11, attach() returns without error when the handshake outlasts
// the receive timeout, skips the name check, and lets the next read finish
// the handshake unchecked. Poco's SSLManager verify callback is replaced too,
// so no process-wide invalid-certificate handler can accept a bad chain.
Poco::Net::Context::Ptr MakeContext(const std::string& host, const std::string& ca_file) {
  using Poco::Net::Context;
  Context::Params params;
  // VERIFY_STRICT: under VERIFY_RELAXED Poco skips the name check for
  // loopback peers.
  params.verificationMode = Context::VERIFY_STRICT;
  params.caLocation = ca_file;
  params.loadDefaultCAs = ca_file.empty();
  params.cipherList = "DEFAULT";
  Context::Ptr context = new Context(Context::TLS_CLIENT_USE, params);
  context->requireMinimumProtocol(Context::PROTO_TLSV1_2);
  context->enableExtendedCertificateVerification(true);

  SSL_CTX* ssl_ctx = context->sslContext();
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ssl_ctx);
  Poco::Net::IPAddress ip;
  const int set = Poco::Net::IPAddress::tryParse(host, ip)
                      ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (set != 1) throw Poco::Net::SSLContextException("cannot check certificates for " + host);
  return context;
}

class SocketTransport : public Transport {
 public:
  SocketTransport(const Pop3Options& options, Poco::Net::StreamSocket socket)
      : host_(options.host),
        ca_file_(options.ca_file),
        timeout_(ToTimespan(options.reply_timeout)),
        socket_(std::move(socket)) {}

  ~SocketTransport() override { Close(); }

  Status Read(char* buf, size_t cap, size_t* n) override {
    try {
      int got = socket_.receiveBytes(buf, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
      if (got < 0) return Status::Network("read failed");
      *n = static_cast<size_t>(got);
      return Status::OK();
    } catch (...) {
      return CurrentExceptionStatus("read", false);
    }
  }

  Status Write(const char* data, size_t n) override {
    try {
      while (n > 0) {
        int sent = socket_.sendBytes(data, static_cast<int>(std::min<size_t>(n, INT_MAX)));
        if (sent <= 0) return Status::Network("write failed");
        data += sent;
        n -= static_cast<size_t>(sent);
      }
      return Status::OK();
    } catch (...) {
      return CurrentExceptionStatus("write", false);
    }
  }

  Status StartTls() override {
    try {
      // Non-blocking while attach() sets up TLS, so that we drive the
      // handshake ourselves under a deadline: Poco 1.11 retries a blocking
      // handshake for as long as the server keeps the connection open.
      socket_.setBlocking(false);
      // The certificate must name host_ (not the peer address); host_ is
      // also sent as SNI.
      Poco::Net::SecureStreamSocket secure =
          Poco::Net::SecureStreamSocket::attach(socket_, host_, MakeContext(host_, ca_file_));
      POPVAULT_RETURN_IF_ERROR(Handshake(secure));
      socket_.setBlocking(true);
      // Also checked by OpenSSL during the handshake (MakeContext); this is
      // Poco's own check, which its non-blocking path leaves to the caller.
      secure.verifyPeerCertificate(host_);
      socket_ = secure;
      secure_ = true;
      return Status::OK();
    } catch (...) {
      return CurrentExceptionStatus("TLS handshake", true);
    }
  }

  bool secure() const override { return secure_; }

  void Close() override {
    try {
      socket_.close();
    } catch (...) {
      // Dropping the connection is the goal; a failed TLS close_notify is fine.
    }
  }

 private:
  Status Handshake(Poco::Net::SecureStreamSocket& secure) {
    const Poco::Timestamp start;
    for (;;) {
      const int rc = secure.completeHandshake();
      if (rc == 1) break;
      if (rc == 0) return Status::Tls("TLS handshake: connection closed by the server");
      const Poco::Timespan remaining = timeout_ - start.elapsed();
      const int mode = rc == Poco::Net::SecureStreamSocket::ERR_SSL_WANT_WRITE
                           ? Poco::Net::Socket::SELECT_WRITE
                           : Poco::Net::Socket::SELECT_READ;
      if (remaining <= 0 || !socket_.poll(remaining, mode)) {
        return Status::Timeout("TLS handshake: no response in time");
      }
    }
    if (!secure.havePeerCertificate()) return Status::Tls("server sent no certificate");
    return Status::OK();
  }

  const std::string host_;
  const std::string ca_file_;
  const Poco::Timespan timeout_;  // for the TLS handshake
  Poco::Net::StreamSocket socket_;
  bool secure_ = false;
};

}  // namespace

Status ConnectSocketTransport(const Pop3Options& options, std::unique_ptr<Transport>* transport) {
  InitializeOnce();
  const std::string where = options.host + ":" + std::to_string(options.port);
  Poco::Net::StreamSocket socket;
  try {
    socket.connect(Poco::Net::SocketAddress(options.host, options.port),
                   ToTimespan(options.connect_timeout));
    socket.setReceiveTimeout(ToTimespan(options.reply_timeout));
    socket.setSendTimeout(ToTimespan(options.reply_timeout));
    socket.setNoDelay(true);  // commands are small and each one waits for its reply
  } catch (...) {
    return CurrentExceptionStatus(where + ": connect", false);
  }
  auto result = std::make_unique<SocketTransport>(options, std::move(socket));
  if (options.tls == TlsMode::kImplicit) {
    POPVAULT_RETURN_IF_ERROR(result->StartTls().WithContext(where));
  }
  *transport = std::move(result);
  return Status::OK();
}

}  // namespace popvault::pop3
