// Sha256: streaming SHA-256 through OpenSSL's EVP interface.
//
// OpenSSL uses the CPU's SHA extensions where it has them; Poco's SHA2Engine
// is portable C and several times slower, which matters on the RETR path,
// where every message byte is hashed.
//
// Not thread-safe: one instance per stream. Finish may be called once; the
// object must not be updated afterwards.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// OpenSSL's context type, so this header does not pull in <openssl/evp.h>.
struct evp_md_ctx_st;

namespace popvault {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  // The digest as 64 lower-case hex digits.
  std::string FinishHex();

  // SHA-256 of `data` as lower-case hex.
  static std::string Hex(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace popvault
