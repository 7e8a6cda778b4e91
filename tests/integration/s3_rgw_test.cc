// The s3 plugin against a real Ceph RADOS Gateway (tests/fixtures: the `rgw`
// CTest fixture writes POPVAULT_RGW_ENV; the environment variable of the same
// name overrides it). Without it the tests print "SKIPPED:". Every request
// goes to 127.0.0.1 only.
#include <Poco/ClassLoader.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "digest.h"
#include "popvault/storage_plugin.h"
#include "s3_client.h"
#include "s3_storage.h"

namespace popvault::s3 {
namespace {

std::map<std::string, std::string> ReadEnv() {
  const char* override_path = std::getenv("POPVAULT_RGW_ENV");
  std::ifstream in(override_path ? override_path : POPVAULT_RGW_ENV);
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

// Skips the test (CTest's SKIP_REGULAR_EXPRESSION "SKIPPED:") without RGW.
#define REQUIRE_RGW(env)                                                     \
  const auto env = ReadEnv();                                                \
  if (!env.count("S3_ENDPOINT")) {                                           \
    std::cout << "SKIPPED: no RGW env file at " << POPVAULT_RGW_ENV << "\n"; \
    return;                                                                  \
  }

std::string UniqueBucket(const std::string& tag) {
  static std::mt19937_64 rng{std::random_device{}()};
  return "pv-" + tag + "-" + std::to_string(rng() % 1000000000);
}

std::map<std::string, std::string> PluginOptions(const std::map<std::string, std::string>& env,
                                                 const std::string& bucket) {
  return {{"endpoint", env.at("S3_ENDPOINT")},
          {"bucket", bucket},
          {"region", env.at("S3_REGION")},
          {"access_key", env.at("S3_ACCESS_KEY")},
          {"secret_key", env.at("S3_SECRET_KEY")},
          {"max_retries", "2"},
          {"timeout", "30"}};
}

const char* NoEnv(const char*) { return nullptr; }

S3StorageOptions Parsed(const std::map<std::string, std::string>& options) {
  S3StorageOptions parsed;
  const Status s = ParseS3Options(options, NoEnv, &parsed);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return parsed;
}

// Creates the test's bucket, and deletes it with all its objects at the end
// of the test (RGW's memstore OSD holds everything in RAM).
class TestBucket {
 public:
  explicit TestBucket(const S3StorageOptions& options) {
    REQUIRE(S3Client::Create(options.client, &client_).ok());
    const Status s = client_->CreateBucket();
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~TestBucket() {
    ListPage page;
    do {
      if (!client_->ListObjects("", page.next_token, &page).ok()) return;
      for (const std::string& key : page.keys) client_->DeleteObject(key).ok();
    } while (page.truncated);
    client_->DeleteBucket().ok();
  }

 private:
  std::unique_ptr<S3Client> client_;
};

std::unique_ptr<Storage> Open(const S3StorageOptions& options) {
  std::unique_ptr<Storage> storage;
  const Status s = OpenS3Storage(options, &storage);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return storage;
}

// `size` pseudo-random bytes computed on the fly (never all in memory).
class GeneratedSource : public ByteSource {
 public:
  explicit GeneratedSource(uint64_t size) : size_(size) {}
  Status Read(char* buf, size_t cap, size_t* n) override {
    *n = static_cast<size_t>(std::min<uint64_t>(cap, size_ - pos_));
    for (size_t i = 0; i < *n; ++i) {
      const uint64_t x = (pos_ + i) * 0x9E3779B97F4A7C15ull;
      buf[i] = static_cast<char>(x >> 56 ^ x >> 29);
    }
    pos_ += *n;
    return Status::OK();
  }
  Status Rewind() override {
    pos_ = 0;
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  uint64_t size_;
  uint64_t pos_ = 0;
};

class HashSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    sha.Update(data, n);
    bytes += n;
    return Status::OK();
  }
  Digest sha = Digest::Sha256();
  uint64_t bytes = 0;
};

std::string HashOf(ByteSource& src) {
  HashSink sink;
  std::string buf(1 << 16, '\0');
  REQUIRE(src.Rewind().ok());
  for (size_t n = 1; n > 0;) {
    REQUIRE(src.Read(buf.data(), buf.size(), &n).ok());
    REQUIRE(sink.Append(buf.data(), n).ok());
  }
  return ToHex(sink.sha.Final());
}

std::string GetText(Storage& storage, const std::string& key) {
  StringSink sink;
  const Status s = storage.Get(key, sink);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return sink.bytes;
}

// A /proc/self/status memory figure (VmRSS, VmHWM), in bytes.
uint64_t ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

// Resets the peak (VmHWM) to the current RSS, and returns that.
uint64_t ResetPeakRss() {
  std::ofstream("/proc/self/clear_refs") << "5";
  return ProcStatusBytes("VmRSS");
}

TEST_CASE("round trip: put, exists, get, list, remove, under a prefix") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, UniqueBucket("rt"));
  options["prefix"] = "popvault/";
  const S3StorageOptions parsed = Parsed(options);
  TestBucket bucket_guard(parsed);
  auto storage = Open(parsed);

  StringSource message("From: a@example.org\r\n\r\nhello\r\n");
  REQUIRE(storage->Put("acct/msg-1", message).ok());
  StringSource empty("");
  REQUIRE(storage->Put("acct/empty", empty).ok());
  bool exists = false;
  REQUIRE(storage->Exists("acct/msg-1", &exists).ok());
  CHECK(exists);
  CHECK(GetText(*storage, "acct/msg-1") == "From: a@example.org\r\n\r\nhello\r\n");
  CHECK(GetText(*storage, "acct/empty").empty());

  std::vector<std::string> keys;
  REQUIRE(storage
              ->List("acct/",
                     [&](const std::string& k) {
                       keys.push_back(k);
                       return true;
                     })
              .ok());
  CHECK(keys == std::vector<std::string>{"acct/empty", "acct/msg-1"});
  CHECK(storage->Sync().ok());

  StringSource replacement("v2");
  REQUIRE(storage->Put("acct/msg-1", replacement).ok());
  CHECK(GetText(*storage, "acct/msg-1") == "v2");

  REQUIRE(storage->Remove("acct/msg-1").ok());
  REQUIRE(storage->Exists("acct/msg-1", &exists).ok());
  CHECK_FALSE(exists);
  CHECK(storage->Remove("acct/msg-1").ok());  // absent: still OK
  StringSink sink;
  CHECK(storage->Get("acct/msg-1", sink).code() == Status::Code::kNotFound);
  CHECK(storage->Put("../escape", message).code() == Status::Code::kInvalidArgument);

  // The prefix is really there, seen without it.
  options.erase("prefix");
  auto raw = Open(Parsed(options));
  REQUIRE(raw->Exists("popvault/acct/empty", &exists).ok());
  CHECK(exists);
}

TEST_CASE("the plugin library loads, declares its options and opens a store") {
  REQUIRE_RGW(env);
  const std::string bucket = UniqueBucket("plugin");
  TestBucket bucket_guard(Parsed(PluginOptions(env, bucket)));
  Poco::ClassLoader<StoragePlugin> loader;
  loader.loadLibrary(POPVAULT_S3_PLUGIN);
  {
    std::unique_ptr<StoragePlugin> plugin(loader.create("StoragePlugin"));
    std::map<std::string, PluginOption> declared;
    for (const PluginOption& o : plugin->Options()) declared[o.name] = o;
    CHECK(declared.at("endpoint").required);
    CHECK(declared.at("bucket").required);
    CHECK(declared.at("secret_key").secret);
    CHECK(declared.at("ca_file").is_path);
    CHECK(declared.at("secret_key_file").is_path);
    for (const auto& [name, value] : PluginOptions(env, bucket)) CHECK(declared.count(name));

    std::unique_ptr<Storage> storage;
    const Status s = plugin->Open(PluginOptions(env, bucket), &storage);
    INFO(s.ToString());
    REQUIRE(s.ok());
    StringSource src("via plugin");
    REQUIRE(storage->Put("p", src).ok());
    CHECK(GetText(*storage, "p") == "via plugin");
  }
  loader.unloadLibrary(POPVAULT_S3_PLUGIN);
}

TEST_CASE("list: more than one page, ascending, prefixes, early stop, concurrent puts") {
  REQUIRE_RGW(env);
  const S3StorageOptions parsed = Parsed(PluginOptions(env, UniqueBucket("list")));
  TestBucket bucket_guard(parsed);
  auto storage = Open(parsed);
  constexpr int kKeys = 1050;  // RGW pages hold 1000 keys
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kKeys; i = next++) {
        char key[32];
        std::snprintf(key, sizeof key, "k/%04d", (i * 7919) % kKeys);  // shuffled order
        StringSource src(key);
        if (!storage->Put(key, src).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(failures == 0);

  std::vector<std::string> keys;
  REQUIRE(storage
              ->List("",
                     [&](const std::string& k) {
                       keys.push_back(k);
                       return true;
                     })
              .ok());
  REQUIRE(keys.size() == kKeys);
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  CHECK(std::adjacent_find(keys.begin(), keys.end()) == keys.end());
  CHECK(GetText(*storage, "k/1049") == "k/1049");

  int count = 0;
  REQUIRE(storage
              ->List("k/10",
                     [&](const std::string& k) {
                       CHECK(k.rfind("k/10", 0) == 0);
                       ++count;
                       return true;
                     })
              .ok());
  CHECK(count == 50);  // k/1000 .. k/1049
  count = 0;
  REQUIRE(storage->List("k/", [&](const std::string&) { return ++count < 10; }).ok());
  CHECK(count == 10);
}

TEST_CASE("multipart: 100 MB in 16 MiB parts, bounded memory, byte-exact read back") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, UniqueBucket("mp"));
  options["multipart_threshold"] = "64M";
  options["multipart_part_size"] = "16M";
  const S3StorageOptions parsed = Parsed(options);
  TestBucket bucket_guard(parsed);
  auto storage = Open(parsed);
  GeneratedSource big(100'000'000);
  const std::string expected = HashOf(big);

  uint64_t base = ResetPeakRss();
  const Status put = storage->Put("big/object", big);
  const uint64_t put_growth = ProcStatusBytes("VmHWM") - base;
  INFO(put.ToString());
  REQUIRE(put.ok());
  CHECK(put_growth < 40u << 20);  // one 16 MiB part plus buffers

  base = ResetPeakRss();
  HashSink sink;
  REQUIRE(storage->Get("big/object", sink).ok());
  const uint64_t get_growth = ProcStatusBytes("VmHWM") - base;
  CHECK(sink.bytes == 100'000'000);
  CHECK(ToHex(sink.sha.Final()) == expected);
  CHECK(get_growth < 8u << 20);  // streamed, not buffered
  std::cout << "100 MB object: peak RSS grew by " << put_growth / 1024 << " KiB (multipart put), "
            << get_growth / 1024 << " KiB (get)\n";
}

TEST_CASE("multipart: small threshold, last part shorter, replaces an object") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, UniqueBucket("mp5"));
  options["multipart_threshold"] = "5M";
  options["multipart_part_size"] = "5M";
  const S3StorageOptions parsed = Parsed(options);
  TestBucket bucket_guard(parsed);
  auto storage = Open(parsed);
  StringSource small("small");
  REQUIRE(storage->Put("obj", small).ok());
  GeneratedSource source(11 << 20);
  REQUIRE(storage->Put("obj", source).ok());
  HashSink sink;
  REQUIRE(storage->Get("obj", sink).ok());
  CHECK(sink.bytes == 11u << 20);
  CHECK(ToHex(sink.sha.Final()) == HashOf(source));
}

TEST_CASE("a wrong secret fails at once with 403 SignatureDoesNotMatch, not retried") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, UniqueBucket("sig"));
  TestBucket bucket_guard(Parsed(options));
  options["secret_key"] = "WrongSecret/0123456789";
  options["max_retries"] = "5";
  std::unique_ptr<Storage> storage;
  const Status open = OpenS3Storage(Parsed(options), &storage);
  INFO(open.ToString());
  CHECK(open.code() == Status::Code::kIOError);
  CHECK(open.message().find("HTTP 403 SignatureDoesNotMatch") != std::string::npos);
  CHECK(open.message().find("attempts") == std::string::npos);
  CHECK(open.message().find("WrongSecret") == std::string::npos);

  std::unique_ptr<S3Client> client;
  REQUIRE(S3Client::Create(Parsed(options).client, &client).ok());
  GeneratedSource body(2 << 20);  // large enough to use "Expect: 100-continue"
  const Status put = client->PutObject("k", body);
  INFO(put.ToString());
  CHECK(put.message().find("HTTP 403 SignatureDoesNotMatch") != std::string::npos);
  CHECK(put.message().find("attempts") == std::string::npos);
}

TEST_CASE("a body changed after hashing is rejected by the server, not retried, old object kept") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, UniqueBucket("bad"));
  options["multipart_threshold"] = "5M";
  options["multipart_part_size"] = "5M";
  options["max_retries"] = "5";
  S3StorageOptions parsed = Parsed(options);
  TestBucket bucket_guard(parsed);
  auto good = Open(parsed);
  StringSource old_body("old object");
  REQUIRE(good->Put("k", old_body).ok());

  parsed.client.corrupt_bodies_for_test = true;
  auto corrupting = Open(parsed);
  auto check_rejected = [](const Status& s) {
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kIOError);
    CHECK(s.message().find("HTTP 400") != std::string::npos);
    const bool digest_error = s.message().find("XAmzContentSHA256Mismatch") != std::string::npos ||
                              s.message().find("BadDigest") != std::string::npos;
    CHECK(digest_error);
    CHECK(s.message().find("attempts") == std::string::npos);
  };
  StringSource small("new object");
  check_rejected(corrupting->Put("k", small));
  GeneratedSource large(2 << 20);  // sent after "100 Continue"
  check_rejected(corrupting->Put("k", large));
  GeneratedSource multipart(6 << 20);
  check_rejected(corrupting->Put("k", multipart));
  CHECK(GetText(*good, "k") == "old object");
  bool exists = true;
  check_rejected(corrupting->Put("fresh", multipart));
  REQUIRE(good->Exists("fresh", &exists).ok());
  CHECK_FALSE(exists);
}

TEST_CASE("a missing bucket is a clear configuration error and the plugin does not create it") {
  REQUIRE_RGW(env);
  const std::string bucket = UniqueBucket("missing");
  std::unique_ptr<Storage> storage;
  const Status s = OpenS3Storage(Parsed(PluginOptions(env, bucket)), &storage);
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().rfind("bucket: ", 0) == 0);
  CHECK(s.message().find(bucket) != std::string::npos);
}

TEST_CASE("connection failures are retried, then reported with the attempt count") {
  REQUIRE_RGW(env);
  auto options = PluginOptions(env, "unreachable");
  options["endpoint"] = "http://127.0.0.1:1";  // nothing listens on port 1
  options["max_retries"] = "2";
  std::unique_ptr<Storage> storage;
  const Status s = OpenS3Storage(Parsed(options), &storage);
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(s.message().find("after 3 attempts") != std::string::npos);
}

// A TLS server on 127.0.0.1 (certificate for DNS:localhost only, made with
// the openssl CLI) answering each connection with an empty listing. Plain
// OpenSSL rather than Poco's server, whose 1.11 server side leaks the SSL
// object of every handshake the client aborts (as these tests make it do).
class TlsServer {
 public:
  TlsServer() : dir_(std::filesystem::temp_directory_path() / UniqueBucket("tls")) {
    std::filesystem::create_directories(dir_);
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
        (dir_ / "key.pem").string() + " -out " + cert() + " 2>/dev/null";
    REQUIRE(std::system(command.c_str()) == 0);
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert().c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, (dir_ / "key.pem").c_str(), SSL_FILETYPE_PEM) == 1);
    port_ = socket_.address().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    SSL_CTX_free(ctx_);
    std::filesystem::remove_all(dir_);
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  std::string url(const std::string& host) const {
    return "https://" + host + ":" + std::to_string(port_);
  }

 private:
  void Serve() {
    while (!stop_) {
      if (!socket_.poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ)) continue;
      Poco::Net::StreamSocket connection = socket_.acceptConnection();
      connection.setReceiveTimeout(Poco::Timespan(5, 0));
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, connection.impl()->sockfd());
      if (SSL_accept(ssl) == 1) Answer(ssl);
      SSL_free(ssl);
    }
  }

  static void Answer(SSL* ssl) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    const std::string body =
        "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body;
    SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
    SSL_shutdown(ssl);
  }

  std::filesystem::path dir_;
  SSL_CTX* ctx_ = nullptr;
  Poco::Net::ServerSocket socket_{Poco::Net::SocketAddress("127.0.0.1", 0)};
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Status OpenTls(const std::string& endpoint, const std::string& ca_file) {
  std::map<std::string, std::string> options = {{"endpoint", endpoint}, {"bucket", "tls-test"},
                                                {"access_key", "AK"},   {"secret_key", "SK"},
                                                {"max_retries", "3"},   {"timeout", "10"}};
  if (!ca_file.empty()) options["ca_file"] = ca_file;
  std::unique_ptr<Storage> storage;
  return OpenS3Storage(Parsed(options), &storage);
}

TEST_CASE("https: the certificate must chain to ca_file and name the endpoint host") {
  TlsServer server;
  CHECK(OpenTls(server.url("localhost"), server.cert()).ok());

  const Status wrong_name = OpenTls(server.url("127.0.0.1"), server.cert());
  INFO(wrong_name.ToString());
  CHECK(wrong_name.code() == Status::Code::kTls);
  CHECK(wrong_name.message().find("attempts") == std::string::npos);

  const Status untrusted = OpenTls(server.url("localhost"), "");  // system CAs
  INFO(untrusted.ToString());
  CHECK(untrusted.code() == Status::Code::kTls);
}

// A plain HTTP server on 127.0.0.1 answering with `handler`, which gets the
// request's number (from 1); for faults RGW cannot be made to produce.
class ScriptedServer {
 public:
  using Handler =
      std::function<void(int n, Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse&)>;
  explicit ScriptedServer(Handler handler) : handler_(std::move(handler)) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(this), socket,
                                                      new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~ScriptedServer() { server_->stopAll(true); }
  int requests() const { return requests_; }
  std::unique_ptr<S3Client> Client() const {
    S3Config config;
    config.https = false;
    config.host = "127.0.0.1";
    config.port = port_;
    config.bucket = "scripted";
    config.virtual_host = false;
    config.credentials = {"AK", "SK", ""};
    config.timeout = std::chrono::seconds(5);
    config.retry = {.max_attempts = 4,
                    .base_delay = std::chrono::milliseconds(1),
                    .max_delay = std::chrono::milliseconds(5)};
    std::unique_ptr<S3Client> client;
    REQUIRE(S3Client::Create(config, &client).ok());
    return client;
  }

 private:
  class Handle : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handle(ScriptedServer* s) : s_(s) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      request.stream().ignore(std::numeric_limits<std::streamsize>::max());
      s_->handler_(++s_->requests_, request, response);
    }

   private:
    ScriptedServer* s_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(ScriptedServer* s) : s_(s) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handle(s_);
    }

   private:
    ScriptedServer* s_;
  };

  Handler handler_;
  std::atomic<int> requests_{0};
  uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

void Reply(Poco::Net::HTTPServerResponse& response, int status, const std::string& body) {
  response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  response.send() << body;
}

TEST_CASE("scripted: 503 and 500 are retried, with the body resent, until a 200") {
  ScriptedServer server([](int n, auto&, auto& response) {
    if (n == 1) return Reply(response, 503, "<Error><Code>SlowDown</Code></Error>");
    if (n == 2) return Reply(response, 500, "");
    Reply(response, 200, "");
  });
  StringSource body("payload");
  const Status s = server.Client()->PutObject("k", body);
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(server.requests() == 3);
}

TEST_CASE("scripted: retries are bounded, and the last error is reported") {
  ScriptedServer server([](int, auto&, auto& response) {
    Reply(response, 503, "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>");
  });
  bool exists = false;
  const Status s = server.Client()->HeadObject("k", &exists);
  INFO(s.ToString());
  CHECK(server.requests() == 4);
  CHECK(s.message().find("HTTP 503") != std::string::npos);
  CHECK(s.message().find("after 4 attempts") != std::string::npos);
}

TEST_CASE("scripted: a 200 carrying an <Error> completes no multipart upload") {
  ScriptedServer server([](int n, auto&, auto& response) {
    if (n <= 2) return Reply(response, 200, "<Error><Code>InternalError</Code></Error>");
    Reply(response, 200, "<CompleteMultipartUploadResult/>");
  });
  CHECK(server.Client()->CompleteMultipartUpload("k", "id", {"\"e\""}).ok());
  CHECK(server.requests() == 3);
}

TEST_CASE("scripted: a GET cut short fails (and is not retried into a duplicate)") {
  ScriptedServer server([](int, auto&, auto& response) {
    response.setContentLength(100);
    response.setKeepAlive(false);
    response.send() << "only ten..";  // then the server closes the connection
  });
  StringSink sink;
  const Status s = server.Client()->GetObject("k", sink);
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(s.message().find("10 of 100 bytes") != std::string::npos);
  CHECK(server.requests() == 1);
}

TEST_CASE("scripted: 4xx are final, 404 is NotFound for GetObject and OK for DeleteObject") {
  ScriptedServer server([](int, auto&, auto& response) {
    Reply(response, 404, "<Error><Code>NoSuchKey</Code></Error>");
  });
  StringSink sink;
  CHECK(server.Client()->GetObject("k", sink).code() == Status::Code::kNotFound);
  CHECK(server.Client()->DeleteObject("k").ok());
  CHECK(server.requests() == 2);
}

}  // namespace
}  // namespace popvault::s3
