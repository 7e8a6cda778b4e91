#include "s3_client.h"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Timestamp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <csignal>
#include <istream>
#include <ostream>
#include <random>
#include <thread>

#include "digest.h"

namespace popvault::s3 {

// A request to send. The body is `body`, or `source` (streamed), or none.
struct S3Client::Call {
  const char* op;         // S3 operation name, for messages
  std::string method;     // "GET", ...
  std::string key;        // empty: the bucket itself
  NameValues query;       // decoded
  NameValues headers;     // extra headers, all signed
  std::string_view body;  // used when source is null
  ByteSource* source = nullptr;
  std::string payload_sha256;  // hex; empty: hash of `body`
  ByteSink* sink = nullptr;    // receives a 2xx body (else Reply::body)
  bool error_in_200 = false;   // a 200 may carry an <Error> (CompleteMultipartUpload)
};

struct S3Client::Reply {
  int attempts = 0;
  int status = 0;
  std::string body;  // when not streamed to the sink; capped
  std::string etag;
  S3Error error;  // from the body of a non-2xx reply, if it had one
};

struct S3Client::Attempt {
  Reply reply;
  std::string transport_error;  // set: no complete reply (retryable)
  bool delivered = false;       // the sink got bytes: a retry would duplicate them
  Status fatal;                 // a local failure (source, sink): never retried
};

namespace {

constexpr size_t kIoChunk = 64 * 1024;
constexpr size_t kMaxReplyBody = 16 << 20;  // a 1000-key listing is well under 1 MiB
// Bodies this large wait for "100 Continue", so that a rejected request
// (bad signature, no such bucket) is answered before we send megabytes the
// server would not read, and which would end in a reset instead of the error.
constexpr uint64_t kExpectContinueMin = 1 << 20;

void InitializeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    Poco::Net::initializeSSL();
    // OpenSSL writes with plain send(): a write to a connection the server
    // closed must be an error (EPIPE), not the death of the process.
    std::signal(SIGPIPE, SIG_IGN);
  });
}

std::string AmzDate() {
  return Poco::DateTimeFormatter::format(Poco::Timestamp(), "%Y%m%dT%H%M%SZ");
}

bool IsIpAddress(const std::string& host) {
  Poco::Net::IPAddress ip;
  return Poco::Net::IPAddress::tryParse(host, ip);
}

std::string HostHeader(const S3Config& c, const std::string& host) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const bool default_port = c.port == (c.https ? 443 : 80);
  return default_port ? h : h + ":" + std::to_string(c.port);
}

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

bool Is2xx(int status) { return status >= 200 && status < 300; }

std::string Attempts(int attempts) {
  return attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "";
}

// Poco reports OpenSSL's verdict as a plain SSLException carrying OpenSSL's
// reason text; a connection reset during a handshake is an SSLException too.
bool IsCertificateFailure(const Poco::Net::SSLException& e) {
  return dynamic_cast<const Poco::Net::CertificateValidationException*>(&e) != nullptr ||
         e.displayText().find("certificate verify failed") != std::string::npos;
}

// Streams `src` (from its start) into `os`: exactly src.Size() bytes.
Status WriteSource(ByteSource& src, bool corrupt, std::ostream& os) {
  POPVAULT_RETURN_IF_ERROR(src.Rewind());
  std::string buf(kIoChunk, '\0');
  uint64_t sent = 0;
  while (sent < src.Size() && os) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(src.Read(buf.data(), buf.size(), &n));
    if (n == 0) break;
    if (corrupt && sent == 0) buf[0] ^= 1;
    n = static_cast<size_t>(std::min<uint64_t>(n, src.Size() - sent));
    os.write(buf.data(), static_cast<std::streamsize>(n));
    sent += n;
  }
  if (sent < src.Size() && os) {
    return Status::IOError("source yielded " + std::to_string(sent) + " bytes but announced " +
                           std::to_string(src.Size()));
  }
  return Status::OK();
}

// Reads the whole reply body into *out; false when it exceeds the cap.
bool ReadCapped(std::istream& is, std::string* out) {
  char buf[kIoChunk];
  while (is.read(buf, sizeof buf) || is.gcount() > 0) {
    out->append(buf, static_cast<size_t>(is.gcount()));
    if (out->size() > kMaxReplyBody) return false;
  }
  return true;
}

}  // namespace

// The TLS context of one endpoint host: verification happens inside
// OpenSSL during the handshake (chain and host name). Poco's own
// post-handshake name check is not relied on: Poco 1.11 can skip it when the
// handshake is slow (see agent/src/pop3/socket_transport.cc).
class S3Client::Tls {
 public:
  static Status Make(const std::string& host, const std::string& ca_file,
                     std::unique_ptr<Tls>* tls) {
    using Poco::Net::Context;
    try {
      Context::Params params;
      params.verificationMode = Context::VERIFY_STRICT;  // RELAXED skips loopback names
      params.caLocation = ca_file;
      params.loadDefaultCAs = ca_file.empty();
      params.cipherList = "DEFAULT";
      Context::Ptr context = new Context(Context::TLS_CLIENT_USE, params);
      context->requireMinimumProtocol(Context::PROTO_TLSV1_2);
      context->enableExtendedCertificateVerification(true);
      SSL_CTX* ssl_ctx = context->sslContext();
      // Replaces Poco's verify callback: no process-wide "accept invalid
      // certificate" handler can override OpenSSL's verdict.
      SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, nullptr);
      X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ssl_ctx);
      const int set = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                        : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
      if (set != 1) return Status::Tls("cannot check certificates for " + host);
      *tls = std::unique_ptr<Tls>(new Tls(context));
      return Status::OK();
    } catch (const Poco::Exception& e) {
      return Status::Tls("TLS setup for " + host + ": " + e.displayText());
    }
  }

  Poco::Net::Context::Ptr context() const { return context_; }

 private:
  explicit Tls(Poco::Net::Context::Ptr context) : context_(std::move(context)) {}
  Poco::Net::Context::Ptr context_;
};

S3Client::S3Client(const S3Config& config)
    : config_(config),
      connect_host_(config.virtual_host ? config.bucket + "." + config.host : config.host),
      host_header_(HostHeader(config, connect_host_)) {}

S3Client::~S3Client() = default;

Status S3Client::Create(const S3Config& config, std::unique_ptr<S3Client>* client) {
  InitializeOnce();
  std::unique_ptr<S3Client> c(new S3Client(config));
  if (config.https) POPVAULT_RETURN_IF_ERROR(Tls::Make(c->connect_host_, config.ca_file, &c->tls_));
  *client = std::move(c);
  return Status::OK();
}

std::string S3Client::Path(const std::string& key) const {
  if (config_.virtual_host) return "/" + key;
  return "/" + config_.bucket + (key.empty() ? "" : "/" + key);
}

std::string S3Client::Describe(const Call& call) const {
  return "s3 bucket \"" + config_.bucket + "\"" +
         (call.key.empty() ? "" : " key \"" + call.key + "\"") + ": " + call.op;
}

std::unique_ptr<Poco::Net::HTTPClientSession> S3Client::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto session = std::move(idle_.back());
      idle_.pop_back();
      return session;
    }
  }
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (tls_) {
    session = std::make_unique<Poco::Net::HTTPSClientSession>(connect_host_, config_.port,
                                                              tls_->context());
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(connect_host_, config_.port);
  }
  session->setTimeout(Poco::Timespan(static_cast<long>(config_.timeout.count()), 0));
  session->setKeepAlive(true);
  return session;
}

void S3Client::Release(std::unique_ptr<Poco::Net::HTTPClientSession> session) {
  constexpr size_t kMaxIdle = 16;
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(session));
}

S3Client::Attempt S3Client::Once(const Call& call) {
  Attempt a;
  std::unique_ptr<Poco::Net::HTTPClientSession> session = Acquire();
  const uint64_t body_size = call.source ? call.source->Size() : call.body.size();
  const bool has_body = call.source != nullptr || call.method == "PUT" || call.method == "POST";
  const std::string amz_date = AmzDate();
  SigV4Request signed_request{
      call.method, Path(call.key), call.query, call.headers,
      call.payload_sha256.empty() ? ToHex(Sha256(call.body)) : call.payload_sha256};
  NameValues& headers = signed_request.headers;
  headers.emplace_back("Host", host_header_);
  headers.emplace_back("X-Amz-Date", amz_date);
  headers.emplace_back("X-Amz-Content-SHA256", signed_request.payload_hash);
  if (!config_.credentials.session_token.empty()) {
    headers.emplace_back("X-Amz-Security-Token", config_.credentials.session_token);
  }
  const std::string authorization =
      Authorization(signed_request, config_.credentials, {amz_date, config_.region, "s3"});

  std::string uri = UriEncode(signed_request.path, true);
  const std::string query = EncodeQuery(call.query);
  if (!query.empty()) uri += "?" + query;
  Poco::Net::HTTPRequest request(call.method, uri, Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [name, value] : headers) request.set(name, value);
  request.set("Authorization", authorization);
  request.setKeepAlive(true);
  if (has_body) request.setContentLength64(static_cast<Poco::Int64>(body_size));
  const bool expect_continue = has_body && body_size >= kExpectContinueMin;
  if (expect_continue) request.setExpectContinue(true);

  try {
    std::ostream& os = session->sendRequest(request);
    Poco::Net::HTTPResponse response;
    const bool send_body = !expect_continue || session->peekResponse(response);
    // A connection whose request body was cut short cannot carry another request.
    bool reusable = send_body;
    if (send_body && has_body) {
      if (call.source) {
        a.fatal = WriteSource(*call.source, config_.corrupt_bodies_for_test, os);
      } else if (config_.corrupt_bodies_for_test && !call.body.empty()) {
        std::string copy(call.body);
        copy[0] ^= 1;
        os.write(copy.data(), static_cast<std::streamsize>(copy.size()));
      } else {
        os.write(call.body.data(), static_cast<std::streamsize>(call.body.size()));
      }
      if (!a.fatal.ok()) return a;
      os.flush();
      // A server that rejects a request may answer and close before reading
      // the whole body: try for its answer before calling it a network error.
      if (!os) {
        reusable = false;
        const Poco::Exception* e = session->networkException();
        a.transport_error = "sending: " + (e ? e->displayText() : std::string("write failed"));
      }
    }
    std::istream& is = session->receiveResponse(response);
    a.transport_error.clear();
    a.reply.status = response.getStatus();
    a.reply.etag = response.get("ETag", "");
    const bool streamed = Is2xx(a.reply.status) && call.sink != nullptr;
    uint64_t received = 0;
    if (streamed) {
      char buf[kIoChunk];
      while (is.read(buf, sizeof buf) || is.gcount() > 0) {
        const size_t n = static_cast<size_t>(is.gcount());
        a.delivered = true;
        received += n;
        a.fatal = call.sink->Append(buf, n);
        if (!a.fatal.ok()) return a;
      }
    } else if (!ReadCapped(is, &a.reply.body)) {
      a.fatal = Status::Protocol("reply body larger than " + std::to_string(kMaxReplyBody));
      return a;
    }
    if (is.bad()) {
      const Poco::Exception* e = session->networkException();
      a.transport_error = "receiving: " + (e ? e->displayText() : std::string("read failed"));
      return a;
    }
    if (streamed && response.hasContentLength() &&
        received != static_cast<uint64_t>(response.getContentLength64())) {
      a.transport_error = "connection lost after " + std::to_string(received) + " of " +
                          std::to_string(response.getContentLength64()) + " bytes";
      return a;
    }
    if (!Is2xx(a.reply.status)) ParseError(a.reply.body, &a.reply.error);
    if (call.error_in_200 && a.reply.status == 200 && ParseError(a.reply.body, &a.reply.error)) {
      a.reply.status = 500;  // S3's documented "200 with an error": a server error
    }
    if (reusable && response.getKeepAlive()) Release(std::move(session));
  } catch (const Poco::Net::SSLException& e) {
    // A certificate that failed verification fails again: not retried.
    if (IsCertificateFailure(e)) {
      a.fatal = Status::Tls("TLS with " + connect_host_ + ": " + e.displayText());
    } else if (a.transport_error.empty()) {
      a.transport_error = e.displayText();
    }
  } catch (const Poco::Exception& e) {
    if (a.transport_error.empty()) a.transport_error = e.displayText();
  } catch (const std::exception& e) {
    if (a.transport_error.empty()) a.transport_error = e.what();
  }
  return a;
}

Status S3Client::Execute(const Call& call, Reply* reply) {
  for (int attempt = 1;; ++attempt) {
    Attempt a = Once(call);
    if (!a.fatal.ok()) return a.fatal.WithContext(Describe(call));
    const int status = a.transport_error.empty() ? a.reply.status : 0;
    const bool retry = IsRetryable(status, a.reply.error.code) && !a.delivered &&
                       attempt < config_.retry.max_attempts;
    if (!retry) {
      if (status == 0) {
        return Status::IOError(Describe(call) + ": " + a.transport_error + Attempts(attempt));
      }
      *reply = std::move(a.reply);
      reply->attempts = attempt;
      return Status::OK();
    }
    std::this_thread::sleep_for(BackoffDelay(config_.retry, attempt, Uniform()));
  }
}

Status S3Client::Expect(const Call& call, const Reply& reply, std::initializer_list<int> ok) const {
  for (int status : ok) {
    if (reply.status == status) return Status::OK();
  }
  std::string text = Describe(call) + ": HTTP " + std::to_string(reply.status);
  if (!reply.error.code.empty()) text += " " + reply.error.code;
  if (!reply.error.message.empty()) text += ": " + reply.error.message;
  if (!reply.error.request_id.empty()) text += " (request id " + reply.error.request_id + ")";
  return Status::IOError(text + Attempts(reply.attempts));
}

Status S3Client::CheckBucket() {
  // ListObjectsV2 rather than HeadBucket: a HEAD reply has no body, and the
  // body's error code (SignatureDoesNotMatch, AccessDenied, NoSuchBucket) is
  // what tells an operator what to fix.
  const Call call{
      .op = "ListObjectsV2", .method = "GET", .query = {{"list-type", "2"}, {"max-keys", "1"}}};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  if (reply.status == 404 && reply.error.code == "NoSuchBucket") {
    return Status::NotFound(Describe(call) + ": no such bucket");
  }
  return Expect(call, reply, {200});
}

Status S3Client::CreateBucket() {
  // us-east-1 is the default location; any other must be named.
  const std::string body = config_.region == "us-east-1"
                               ? std::string()
                               : "<CreateBucketConfiguration><LocationConstraint>" +
                                     config_.region +
                                     "</LocationConstraint></CreateBucketConfiguration>";
  const Call call{.op = "CreateBucket", .method = "PUT", .body = body};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  if (reply.status == 409 && reply.error.code == "BucketAlreadyOwnedByYou") return Status::OK();
  return Expect(call, reply, {200});
}

Status S3Client::DeleteBucket() {
  const Call call{.op = "DeleteBucket", .method = "DELETE"};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  if (reply.status == 404 && reply.error.code == "NoSuchBucket") return Status::OK();
  return Expect(call, reply, {204});
}

Status S3Client::PutObject(const std::string& key, ByteSource& src) {
  // First pass: the hashes the server will check the second pass against.
  Digest sha256 = Digest::Sha256();
  Digest md5 = Digest::Md5();
  POPVAULT_RETURN_IF_ERROR(src.Rewind());
  std::string buf(static_cast<size_t>(std::min<uint64_t>(kIoChunk, src.Size() + 1)), '\0');
  uint64_t total = 0;
  for (;;) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(src.Read(buf.data(), buf.size(), &n));
    if (n == 0) break;
    sha256.Update(buf.data(), n);
    md5.Update(buf.data(), n);
    total += n;
  }
  const Call call{.op = "PutObject",
                  .method = "PUT",
                  .key = key,
                  .headers = {{"Content-MD5", ToBase64(md5.Final())}},
                  .source = &src,
                  .payload_sha256 = ToHex(sha256.Final())};
  if (total != src.Size()) {
    return Status::IOError(Describe(call) + ": source yielded " + std::to_string(total) +
                           " bytes but announced " + std::to_string(src.Size()));
  }
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  return Expect(call, reply, {200});
}

Status S3Client::GetObject(const std::string& key, ByteSink& sink) {
  const Call call{.op = "GetObject", .method = "GET", .key = key, .sink = &sink};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  if (reply.status == 404 && reply.error.code != "NoSuchBucket") {
    return Status::NotFound(Describe(call) + ": no such object");
  }
  return Expect(call, reply, {200});
}

Status S3Client::HeadObject(const std::string& key, bool* exists) {
  const Call call{.op = "HeadObject", .method = "HEAD", .key = key};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  *exists = reply.status == 200;
  return *exists ? Status::OK() : Expect(call, reply, {404});
}

Status S3Client::DeleteObject(const std::string& key) {
  const Call call{.op = "DeleteObject", .method = "DELETE", .key = key};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  if (reply.status == 404 && reply.error.code == "NoSuchKey") return Status::OK();
  return Expect(call, reply, {200, 204});
}

Status S3Client::ListObjects(const std::string& prefix, const std::string& token, ListPage* page) {
  Call call{
      .op = "ListObjectsV2", .method = "GET", .query = {{"list-type", "2"}, {"prefix", prefix}}};
  if (!token.empty()) call.query.emplace_back("continuation-token", token);
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  POPVAULT_RETURN_IF_ERROR(Expect(call, reply, {200}));
  return ParseListPage(reply.body, page).WithContext(Describe(call));
}

Status S3Client::CreateMultipartUpload(const std::string& key, std::string* upload_id) {
  const Call call{
      .op = "CreateMultipartUpload", .method = "POST", .key = key, .query = {{"uploads", ""}}};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  POPVAULT_RETURN_IF_ERROR(Expect(call, reply, {200}));
  return ParseUploadId(reply.body, upload_id).WithContext(Describe(call));
}

Status S3Client::UploadPart(const std::string& key, const std::string& upload_id, int part_number,
                            std::string_view data, std::string* etag) {
  Digest md5 = Digest::Md5();
  md5.Update(data);
  const Call call{.op = "UploadPart",
                  .method = "PUT",
                  .key = key,
                  .query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
                  .headers = {{"Content-MD5", ToBase64(md5.Final())}},
                  .body = data,
                  .payload_sha256 = ToHex(Sha256(data))};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  POPVAULT_RETURN_IF_ERROR(Expect(call, reply, {200}));
  if (reply.etag.empty()) return Status::Protocol(Describe(call) + ": reply without an ETag");
  *etag = reply.etag;
  return Status::OK();
}

Status S3Client::CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                         const std::vector<std::string>& etags) {
  const std::string body = CompleteMultipartBody(etags);
  Digest md5 = Digest::Md5();
  md5.Update(body);
  const Call call{.op = "CompleteMultipartUpload",
                  .method = "POST",
                  .key = key,
                  .query = {{"uploadId", upload_id}},
                  .headers = {{"Content-MD5", ToBase64(md5.Final())}},
                  .body = body,
                  .error_in_200 = true};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  return Expect(call, reply, {200});
}

Status S3Client::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  const Call call{.op = "AbortMultipartUpload",
                  .method = "DELETE",
                  .key = key,
                  .query = {{"uploadId", upload_id}}};
  Reply reply;
  POPVAULT_RETURN_IF_ERROR(Execute(call, &reply));
  return Expect(call, reply, {204, 404});
}

}  // namespace popvault::s3
