// S3Client: the S3 REST calls the storage needs, over Poco HTTP(S), signed
// with AWS Signature V4 (header auth, payload SHA-256 always signed: the
// server re-hashes every body it receives and rejects a mismatch).
//
// Every call retries per retry.h (rewinding the ByteSource for each new
// attempt) and returns a Status, never throws. Errors name the bucket and
// key, the HTTP status, and the S3 error code, message and request id; they
// never contain credentials.
//
// Thread-safety: all methods may be called concurrently; each call borrows
// a keep-alive connection from a small pool (or opens a new one).
//
// TLS (https endpoints): TLS 1.2 or newer; the chain is verified against the
// system CAs or `ca_file`; the certificate must name the host connected to,
// which OpenSSL checks during the handshake (so no Poco code path can skip
// it, see MakeTlsContext in s3_client.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "popvault/byte_stream.h"
#include "popvault/status.h"
#include "retry.h"
#include "s3_xml.h"
#include "sigv4.h"

namespace Poco::Net {
class HTTPClientSession;
}

namespace popvault::s3 {

struct S3Config {
  bool https = true;
  std::string host;  // endpoint host name or IP address (never with the bucket)
  uint16_t port = 443;
  std::string bucket;
  std::string region = "us-east-1";
  bool virtual_host = true;  // bucket.host/key; else host/bucket/key
  std::string ca_file;       // https only; empty: system CAs
  SigV4Credentials credentials;
  std::chrono::seconds timeout{60};  // connect, and each send or receive
  RetryPolicy retry;
  // Test only: flips one byte of every request body after it was hashed, so
  // that tests can check the server verifies payload hashes.
  bool corrupt_bodies_for_test = false;
};

class S3Client {
 public:
  // Sets up TLS (no network traffic yet). Tls error for a bad ca_file.
  static Status Create(const S3Config& config, std::unique_ptr<S3Client>* client);
  ~S3Client();

  const S3Config& config() const { return config_; }

  // Bucket: CheckBucket is OK if the bucket exists and the credentials may
  // list it (NotFound if it does not exist). For tests only (the plugin never
  // creates or deletes buckets): CreateBucket is OK if the bucket already
  // exists and is ours; DeleteBucket (of an empty bucket) if it is absent.
  Status CheckBucket();
  Status CreateBucket();
  Status DeleteBucket();

  // Objects; `key` is the full S3 key. PutObject reads `src` twice (hashes,
  // then sends), holding only a small buffer. GetObject streams into `sink`
  // (NotFound if absent); it fails if fewer bytes than announced arrive.
  // DeleteObject is OK if the object is absent.
  Status PutObject(const std::string& key, ByteSource& src);
  Status GetObject(const std::string& key, ByteSink& sink);
  Status HeadObject(const std::string& key, bool* exists);
  Status DeleteObject(const std::string& key);
  // One ListObjectsV2 page of up to 1000 keys; `token` empty for the first.
  Status ListObjects(const std::string& prefix, const std::string& token, ListPage* page);

  // Multipart upload: parts are numbered from 1; `data` is one whole part.
  Status CreateMultipartUpload(const std::string& key, std::string* upload_id);
  Status UploadPart(const std::string& key, const std::string& upload_id, int part_number,
                    std::string_view data, std::string* etag);
  Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                 const std::vector<std::string>& etags);
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id);

  struct Call;
  struct Reply;

 private:
  struct Attempt;
  class Tls;

  explicit S3Client(const S3Config& config);

  Status Execute(const Call& call, Reply* reply);
  Attempt Once(const Call& call);
  Status Expect(const Call& call, const Reply& reply, std::initializer_list<int> ok) const;
  std::string Describe(const Call& call) const;
  std::string Path(const std::string& key) const;

  std::unique_ptr<Poco::Net::HTTPClientSession> Acquire();
  void Release(std::unique_ptr<Poco::Net::HTTPClientSession> session);

  const S3Config config_;
  const std::string connect_host_;  // bucket.host under virtual-host addressing
  const std::string host_header_;
  std::unique_ptr<Tls> tls_;  // null for http

  std::mutex mu_;
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> idle_;  // guarded by mu_
};

}  // namespace popvault::s3
