// Hashes S3 requests need: SHA-256 (payload hashes, SigV4), MD5
// (Content-MD5) and HMAC-SHA256 (SigV4 signing key and signature), all via
// OpenSSL (SHA-NI/AVX where the CPU has them).
//
// Not thread-safe per instance; construction and use never throw (OpenSSL
// failures for these built-in algorithms abort: they cannot happen unless
// the library is broken).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace popvault::s3 {

// Incremental digest. Not copyable or movable (the factories rely on
// guaranteed copy elision).
class Digest {
 public:
  explicit Digest(const EVP_MD* md);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  static Digest Sha256() { return Digest(EVP_sha256()); }
  static Digest Md5() { return Digest(EVP_md5()); }

  void Update(const char* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // The raw digest bytes; the instance is spent afterwards.
  std::string Final();

 private:
  EVP_MD_CTX* ctx_;
};

std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string ToHex(std::string_view bytes);  // lower case
std::string ToBase64(std::string_view bytes);

}  // namespace popvault::s3
