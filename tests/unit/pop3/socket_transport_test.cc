// The socket transport against in-process loopback servers: the three
// timeouts, certificate pinning, chain and host-name checks, SNI and the TLS
// version floor. Servers are threads on 127.0.0.1 with a certificate made at
// test time; no external processes.
#include "pop3/socket_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pop3/pop3_session.h"
#include "pop3/reply_reader.h"

using popvault::AuthMethod;
using popvault::Pop3Options;
using popvault::Pop3Session;
using popvault::Status;
using popvault::TlsMode;
using Code = popvault::Status::Code;
using namespace popvault::pop3;
using Catch::Matchers::Contains;

namespace {

// Bounds every wait of a test server, so a broken client cannot hang a test.
constexpr int kGuardSeconds = 20;

// A self-signed certificate for "localhost" (SAN DNS:localhost only), made
// once per process, with its SHA-256 fingerprint computed here from the DER
// and a PEM copy for ca_file.
struct TestCert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string fingerprint;
  std::string pem_file;
};

const TestCert& Cert() {
  static const TestCert cert = [] {
    TestCert t;
    t.key = EVP_EC_gen("P-256");
    REQUIRE(t.key != nullptr);
    t.cert = X509_new();
    X509_set_version(t.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(t.cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(t.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(t.cert), 24 * 3600);
    X509_set_pubkey(t.cert, t.key);
    X509_NAME* name = X509_get_subject_name(t.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(t.cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, t.cert, t.cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
    REQUIRE(san != nullptr);
    X509_add_ext(t.cert, san, -1);
    X509_EXTENSION_free(san);
    REQUIRE(X509_sign(t.cert, t.key, EVP_sha256()) > 0);

    unsigned char* der = nullptr;
    const int der_len = i2d_X509(t.cert, &der);
    REQUIRE(der_len > 0);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    REQUIRE(EVP_Digest(der, static_cast<size_t>(der_len), md, &md_len, EVP_sha256(), nullptr));
    OPENSSL_free(der);
    char hex[3];
    t.fingerprint = "sha256:";
    for (unsigned int i = 0; i < md_len; ++i) {
      std::snprintf(hex, sizeof hex, "%02x", md[i]);
      t.fingerprint += hex;
    }

    t.pem_file = "/tmp/popvault-socket-transport-test-" + std::to_string(::getpid()) + ".pem";
    FILE* f = std::fopen(t.pem_file.c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, t.cert);
    std::fclose(f);
    return t;
  }();
  return cert;
}

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using ServerContext = std::unique_ptr<SSL_CTX, CtxFree>;

// A TLS server context with the test certificate; `max_version` caps the
// protocol (0: OpenSSL's default range).
ServerContext MakeServerContext(int max_version = 0) {
  ServerContext ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx != nullptr);
  REQUIRE(SSL_CTX_use_certificate(ctx.get(), Cert().cert) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), Cert().key) == 1);
  if (max_version != 0) {
    SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  }
  return ctx;
}

// A listening socket on 127.0.0.1 and an ephemeral port. The kernel completes
// TCP handshakes whether or not anyone calls Accept.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &len) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~Listener() { ::close(fd_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uint16_t port() const { return port_; }

  // The next connection, or -1 if none comes within the guard time.
  int Accept() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, kGuardSeconds * 1000) != 1) return -1;
    return ::accept(fd_, nullptr, nullptr);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The server side of one connection, plain and then optionally TLS. Blocking,
// every read and write bounded by the guard time.
class ServerConn {
 public:
  explicit ServerConn(int fd) : fd_(fd) {
    timeval guard{kGuardSeconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &guard, sizeof guard);
  }
  ~ServerConn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
  }
  ServerConn(const ServerConn&) = delete;
  ServerConn& operator=(const ServerConn&) = delete;

  // The server side of the handshake; false if it fails.
  bool StartTls(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    const bool ok = SSL_accept(ssl_) == 1;
    ERR_clear_error();
    tls_ok_ = ok;
    return ok;
  }

  // The SNI name the client sent; empty if none.
  std::string ServerName() const {
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return name != nullptr ? name : "";
  }

  void Send(const std::string& bytes) {
    if (tls_ok_) {
      SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    } else {
      (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }
  }

  // One line without its CRLF, read a byte at a time so that nothing after it
  // (a TLS ClientHello after STLS) is consumed. False at end of stream.
  bool ReadLine(std::string* line) {
    line->clear();
    char c;
    while (ReadSome(&c, 1) == 1) {
      if (c == '\n') {
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return true;
      }
      line->push_back(c);
    }
    return false;
  }

  // Reads until the client closes the connection (or the guard time passes).
  void HoldUntilClosed() {
    char buf[4096];
    while (ReadSome(buf, sizeof buf) > 0) {
    }
  }

  // Every byte the client sent, decrypted once TLS is up.
  const std::string& received() const { return received_; }

 private:
  int ReadSome(char* buf, int cap) {
    const int n = tls_ok_ ? SSL_read(ssl_, buf, cap) : static_cast<int>(::recv(fd_, buf, cap, 0));
    if (n > 0) received_.append(buf, static_cast<size_t>(n));
    return n;
  }

  int fd_;
  SSL* ssl_ = nullptr;
  bool tls_ok_ = false;
  std::string received_;
};

// Serves one connection of `listener` with `body` on its own thread. Declare
// it before the client objects, so the client is gone (and the connection
// closed) before the destructor joins.
class ServerThread {
 public:
  ServerThread(const Listener& listener, std::function<void(ServerConn&)> body)
      : thread_([&listener, body = std::move(body)] {
          const int fd = listener.Accept();
          if (fd < 0) return;
          ServerConn conn(fd);
          body(conn);
        }) {}
  ~ServerThread() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

Pop3Options Options(uint16_t port, TlsMode tls) {
  Pop3Options options;
  options.host = "127.0.0.1";
  options.port = port;
  options.tls = tls;
  options.user = "alice";
  options.password = "s3cret";
  options.auth = AuthMethod::kUser;
  options.connect_timeout = std::chrono::seconds(30);
  options.reply_timeout = std::chrono::seconds(30);
  options.idle_timeout = std::chrono::seconds(30);
  return options;
}

std::string Where(const Pop3Options& options) {
  return options.host + ":" + std::to_string(options.port);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Connects and reads one status line through a ReplyReader (the path the
// session's greeting takes).
Status ConnectAndReadLine(const Pop3Options& options, std::string* line,
                          std::unique_ptr<Transport>* out = nullptr) {
  std::unique_ptr<Transport> transport;
  POPVAULT_RETURN_IF_ERROR(ConnectSocketTransport(options, &transport));
  ReplyReader reader(transport.get());
  Status status = reader.ReadStatusLine(line);
  if (out != nullptr) *out = std::move(transport);
  return status;
}

}  // namespace

TEST_CASE("socket: of several addresses the first that accepts is used, and failures are named",
          "[socket]") {
  Listener listener;
  uint16_t refused = 0;
  {
    Listener closed;  // its port refuses once it is closed
    refused = closed.port();
  }
  const Poco::Net::SocketAddress dead("127.0.0.1", refused);
  const Poco::Net::SocketAddress live("127.0.0.1", listener.port());
  Poco::Net::StreamSocket socket;
  REQUIRE(ConnectFirst({dead, live}, std::chrono::seconds(5), &socket).ok());
  CHECK(socket.peerAddress().port() == listener.port());

  Poco::Net::StreamSocket none;
  const Status status = ConnectFirst({dead, dead}, std::chrono::seconds(5), &none);
  CHECK(status.code() == Code::kNetwork);
  CHECK_THAT(status.message(), Contains(dead.toString() + ": ") && Contains("; "));
}

TEST_CASE("socket: an address that swallows the connect uses only its share of connect_timeout",
          "[socket][timeout]") {
  // A listener with a backlog of 0, filled: the kernel drops further SYNs.
  const int full = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(full, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(full, 0) == 0);
  socklen_t len = sizeof address;
  REQUIRE(::getsockname(full, reinterpret_cast<sockaddr*>(&address), &len) == 0);
  std::vector<Poco::Net::StreamSocket> fillers(4);
  for (Poco::Net::StreamSocket& f : fillers) {
    try {
      f.connect(Poco::Net::SocketAddress("127.0.0.1", ntohs(address.sin_port)),
                Poco::Timespan(0, 200'000));
    } catch (const Poco::Exception&) {
      // the backlog is full: what this socket was for
    }
  }
  Listener live;
  const auto start = std::chrono::steady_clock::now();
  Poco::Net::StreamSocket socket;
  const Status status =
      ConnectFirst({Poco::Net::SocketAddress("127.0.0.1", ntohs(address.sin_port)),
                    Poco::Net::SocketAddress("127.0.0.1", live.port())},
                   std::chrono::seconds(2), &socket);
  const double elapsed = SecondsSince(start);
  ::close(full);
  INFO(status.ToString() << " after " << elapsed << " s");
  REQUIRE(status.ok());
  CHECK(socket.peerAddress().port() == live.port());
  CHECK(elapsed >= 0.9);  // the first address had half of the 2 s
  CHECK(elapsed < 1.9);
}

TEST_CASE("socket: connect_timeout bounds a TLS handshake the server never answers",
          "[socket][timeout]") {
  Listener listener;  // accepts TCP (kernel backlog), never speaks TLS
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  options.tls_fingerprint = Cert().fingerprint;
  options.connect_timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Transport> transport;
  const Status status = ConnectSocketTransport(options, &transport);
  const double elapsed = SecondsSince(start);
  INFO(status.ToString() << " after " << elapsed << " s");
  CHECK(status.code() == Code::kTimeout);
  CHECK_THAT(status.ToString(), Contains(Where(options)) && Contains("connect_timeout"));
  CHECK(elapsed >= 0.9);
  CHECK(elapsed < 10);
  CHECK(transport == nullptr);
}

TEST_CASE("socket: reply_timeout when the server never greets", "[socket][timeout]") {
  Listener listener;
  ServerThread server(listener, [](ServerConn& conn) { conn.HoldUntilClosed(); });
  Pop3Options options = Options(listener.port(), TlsMode::kNone);
  options.reply_timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Pop3Session> session;
  const Status status = Pop3Session::Open(options, &session);
  const double elapsed = SecondsSince(start);
  INFO(status.ToString() << " after " << elapsed << " s");
  CHECK(status.code() == Code::kTimeout);
  CHECK_THAT(status.ToString(),
             Contains(Where(options)) && Contains("greeting") && Contains("reply_timeout"));
  CHECK(elapsed >= 0.9);
  CHECK(elapsed < 10);
}

TEST_CASE("socket: idle_timeout when a reply stops halfway", "[socket][timeout]") {
  Listener listener;
  ServerThread server(listener, [](ServerConn& conn) {
    conn.Send("+OK POP3 rea");
    conn.HoldUntilClosed();
  });
  Pop3Options options = Options(listener.port(), TlsMode::kNone);
  options.idle_timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Pop3Session> session;
  const Status status = Pop3Session::Open(options, &session);
  const double elapsed = SecondsSince(start);
  INFO(status.ToString() << " after " << elapsed << " s");
  CHECK(status.code() == Code::kTimeout);
  CHECK_THAT(status.ToString(),
             Contains(Where(options)) && Contains("greeting") && Contains("idle_timeout"));
  CHECK(elapsed >= 0.9);
  CHECK(elapsed < 10);
}

TEST_CASE("socket: idle_timeout inside a RETR body names the command", "[socket][timeout]") {
  Listener listener;
  ServerThread server(listener, [](ServerConn& conn) {
    conn.Send("+OK ready\r\n");
    std::string line;
    while (conn.ReadLine(&line)) {
      if (line == "CAPA") {
        conn.Send("+OK\r\nUSER\r\nUIDL\r\n.\r\n");
      } else if (line.rfind("RETR", 0) == 0) {
        conn.Send("+OK 100 octets\r\nSubject: half\r\n\r\nthe first half of the bo");
        conn.HoldUntilClosed();
        return;
      } else {
        conn.Send("+OK\r\n");
      }
    }
  });
  Pop3Options options = Options(listener.port(), TlsMode::kNone);
  options.allow_plaintext_auth = true;
  options.idle_timeout = std::chrono::seconds(1);
  std::unique_ptr<Pop3Session> session;
  REQUIRE(Pop3Session::Open(options, &session).ok());
  struct Sink : popvault::ByteSink {
    Status Append(const char* data, size_t n) override {
      bytes.append(data, n);
      return Status::OK();
    }
    std::string bytes;
  } sink;
  const auto start = std::chrono::steady_clock::now();
  const Status status = session->Retr(1, sink);
  const double elapsed = SecondsSince(start);
  INFO(status.ToString() << " after " << elapsed << " s");
  CHECK(status.code() == Code::kTimeout);
  CHECK_THAT(status.ToString(),
             Contains(Where(options)) && Contains("RETR 1") && Contains("idle_timeout"));
  CHECK(elapsed >= 0.9);
  CHECK(elapsed < 10);
  CHECK(session->broken());
}

TEST_CASE("socket: a stalled TLS read times out once, not twice", "[socket][timeout]") {
  // Poco 1.11's TLS reads waited for the socket timeout and then again in
  // their own retry loop; our reads poll once against one deadline.
  Listener listener;
  ServerContext ctx = MakeServerContext();
  ServerThread server(listener, [&](ServerConn& conn) {
    if (!conn.StartTls(ctx.get())) return;
    conn.Send("+OK rea");
    conn.HoldUntilClosed();
  });
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  options.tls_fingerprint = Cert().fingerprint;
  options.idle_timeout = std::chrono::seconds(3);
  std::unique_ptr<Transport> transport;
  REQUIRE(ConnectSocketTransport(options, &transport).ok());
  ReplyReader reader(transport.get());
  std::string line;
  const auto start = std::chrono::steady_clock::now();
  const Status status = reader.ReadStatusLine(&line);
  const double elapsed = SecondsSince(start);
  INFO(status.ToString() << " after " << elapsed << " s");
  CHECK(status.code() == Code::kTimeout);
  CHECK_THAT(status.ToString(), Contains("idle_timeout"));
  CHECK(elapsed >= 2.9);
  CHECK(elapsed < 5.5);  // twice the timeout would be 6 s
}

TEST_CASE("socket: the right pin connects to a self-signed server, chain and name unchecked",
          "[socket][tls][pin]") {
  Listener listener;
  ServerContext ctx = MakeServerContext();
  std::string server_name = "unset";
  ServerThread server(listener, [&](ServerConn& conn) {
    if (!conn.StartTls(ctx.get())) return;
    server_name = conn.ServerName();
    conn.Send("+OK pinned\r\n");
    conn.HoldUntilClosed();
  });
  // 127.0.0.1: a name the certificate does not carry; no CA trusts it.
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  options.tls_fingerprint = Cert().fingerprint;
  std::unique_ptr<Transport> transport;
  std::string line;
  const Status status = ConnectAndReadLine(options, &line, &transport);
  INFO(status.ToString());
  REQUIRE(status.ok());
  CHECK(line == "+OK pinned");
  CHECK(transport->secure());
  transport.reset();
  server.Join();
  CHECK(server_name.empty());  // no SNI for an address literal
}

TEST_CASE("socket: the pin compares case-insensitively and a malformed pin is refused",
          "[socket][tls][pin]") {
  Listener listener;
  ServerContext ctx = MakeServerContext();
  ServerThread server(listener, [&](ServerConn& conn) {
    if (!conn.StartTls(ctx.get())) return;
    conn.Send("+OK\r\n");
    conn.HoldUntilClosed();
  });
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  std::string upper = Cert().fingerprint;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  options.tls_fingerprint = upper;
  std::string line;
  CHECK(ConnectAndReadLine(options, &line).ok());

  for (const std::string& bad : {std::string("sha256:abc"), "sha1:" + std::string(64, 'a'),
                                 Cert().fingerprint.substr(7), "sha256:" + std::string(64, 'g')}) {
    INFO(bad);
    options.tls_fingerprint = bad;
    std::unique_ptr<Transport> transport;
    const Status status = ConnectSocketTransport(options, &transport);
    CHECK(status.code() == Code::kInvalidArgument);
    CHECK_THAT(status.ToString(), Contains("tls_fingerprint"));
  }
}

TEST_CASE("socket: a wrong pin fails the handshake and names the certificate seen",
          "[socket][tls][pin]") {
  Listener listener;
  ServerContext ctx = MakeServerContext();
  bool handshake_ok = true;
  ServerThread server(listener, [&](ServerConn& conn) {
    handshake_ok = conn.StartTls(ctx.get());
    if (handshake_ok) conn.Send("+OK should not be read\r\n");
  });
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  options.tls_fingerprint = "sha256:" + std::string(64, '0');
  std::string line;
  const Status status = ConnectAndReadLine(options, &line);
  INFO(status.ToString());
  CHECK(status.code() == Code::kTls);
  CHECK_THAT(status.ToString(), Contains(Where(options)) && Contains(Cert().fingerprint) &&
                                    Contains(options.tls_fingerprint));
  server.Join();
  CHECK_FALSE(handshake_ok);  // refused inside the handshake
}

TEST_CASE("socket: without a pin the chain and host name are verified", "[socket][tls]") {
  ServerContext ctx = MakeServerContext();
  SECTION("self-signed, no trusted CA: refused, naming its fingerprint") {
    Listener listener;
    ServerThread server(listener, [&](ServerConn& conn) { conn.StartTls(ctx.get()); });
    Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
    options.host = "localhost";
    // ca_file empty: the system trust store, which does not know this certificate.
    std::string line;
    const Status status = ConnectAndReadLine(options, &line);
    INFO(status.ToString());
    CHECK(status.code() == Code::kTls);
    CHECK_THAT(status.ToString(), Contains("certificate") && Contains(Cert().fingerprint));
  }
  SECTION("trusted, and the name matches: connects, sending SNI") {
    Listener listener;
    std::string server_name;
    ServerThread server(listener, [&](ServerConn& conn) {
      if (!conn.StartTls(ctx.get())) return;
      server_name = conn.ServerName();
      conn.Send("+OK verified\r\n");
      conn.HoldUntilClosed();
    });
    Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
    options.host = "localhost";
    options.ca_file = Cert().pem_file;
    std::unique_ptr<Transport> transport;
    std::string line;
    const Status status = ConnectAndReadLine(options, &line, &transport);
    INFO(status.ToString());
    REQUIRE(status.ok());
    CHECK(line == "+OK verified");
    transport.reset();
    server.Join();
    CHECK(server_name == "localhost");
  }
  SECTION("trusted, but the certificate does not name the host: refused") {
    Listener listener;
    ServerThread server(listener, [&](ServerConn& conn) { conn.StartTls(ctx.get()); });
    Pop3Options options = Options(listener.port(), TlsMode::kImplicit);  // 127.0.0.1
    options.ca_file = Cert().pem_file;
    std::string line;
    const Status status = ConnectAndReadLine(options, &line);
    INFO(status.ToString());
    CHECK(status.code() == Code::kTls);
    CHECK_THAT(status.ToString(), Contains("certificate") && Contains("mismatch"));
  }
}

TEST_CASE("socket: a server that offers only TLS 1.1 is refused", "[socket][tls]") {
  Listener listener;
  ServerContext ctx = MakeServerContext(TLS1_1_VERSION);
  ServerThread server(listener, [&](ServerConn& conn) { conn.StartTls(ctx.get()); });
  Pop3Options options = Options(listener.port(), TlsMode::kImplicit);
  options.tls_fingerprint = Cert().fingerprint;
  std::string line;
  const Status status = ConnectAndReadLine(options, &line);
  INFO(status.ToString());
  CHECK(status.code() == Code::kTls);
}

namespace {

// A POP3 server for STLS: greeting, CAPA with STLS, the handshake after
// "+OK" to STLS, then "+OK" to everything (CAPA lists USER). Records what
// the client sent before and after the handshake.
struct StlsServer {
  ServerContext ctx = MakeServerContext();
  std::string before_tls;
  std::string after_tls;
  bool handshake_ok = false;
  std::string server_name;

  void Serve(ServerConn& conn) {
    conn.Send("+OK ready\r\n");
    std::string line;
    while (conn.ReadLine(&line)) {
      if (line == "CAPA") {
        conn.Send("+OK\r\nSTLS\r\nUSER\r\n.\r\n");
      } else if (line == "STLS") {
        conn.Send("+OK begin TLS\r\n");
        before_tls = conn.received();
        handshake_ok = conn.StartTls(ctx.get());
        if (!handshake_ok) return;
        server_name = conn.ServerName();
        break;
      } else {
        conn.Send("-ERR not before STLS\r\n");
      }
    }
    while (conn.ReadLine(&line)) {
      conn.Send(line == "CAPA" ? "+OK\r\nUSER\r\n.\r\n" : "+OK\r\n");
    }
    after_tls = conn.received().substr(before_tls.size());
  }
};

}  // namespace

TEST_CASE("socket: STLS with the right pin logs in and a wrong pin stops before any credential",
          "[socket][tls][pin]") {
  for (const bool right : {true, false}) {
    INFO((right ? "right pin" : "wrong pin"));
    Listener listener;
    StlsServer stls;
    Status status;
    {
      ServerThread server(listener, [&](ServerConn& conn) { stls.Serve(conn); });
      Pop3Options options = Options(listener.port(), TlsMode::kStartTls);
      options.host = "localhost";
      options.tls_fingerprint = right ? Cert().fingerprint : "sha256:" + std::string(64, 'e');
      std::unique_ptr<Pop3Session> session;
      status = Pop3Session::Open(options, &session);
      INFO(status.ToString());
      if (right) {
        REQUIRE(status.ok());
      } else {
        CHECK(status.code() == Code::kTls);
        CHECK_THAT(status.ToString(),
                   Contains(Where(options)) && Contains("STLS") && Contains(Cert().fingerprint));
      }
    }  // session gone, server joined
    CHECK(stls.before_tls == "CAPA\r\nSTLS\r\n");
    CHECK(stls.handshake_ok == right);
    if (right) {
      CHECK(stls.server_name == "localhost");
      CHECK_THAT(stls.after_tls, Contains("USER alice\r\nPASS s3cret\r\n"));
    } else {
      CHECK(stls.after_tls.empty());
    }
  }
}
