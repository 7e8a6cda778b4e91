#include "digest.h"

#include <openssl/hmac.h>

#include <cstdlib>

namespace popvault::s3 {
namespace {

void Check(int ok) {
  if (ok != 1) std::abort();  // see digest.h: only a broken OpenSSL fails here
}

}  // namespace

Digest::Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) std::abort();
  Check(EVP_DigestInit_ex(ctx_, md, nullptr));
}

Digest::~Digest() { EVP_MD_CTX_free(ctx_); }

void Digest::Update(const char* data, size_t n) { Check(EVP_DigestUpdate(ctx_, data, n)); }

std::string Digest::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  Check(EVP_DigestFinal_ex(ctx_, out, &n));
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string Sha256(std::string_view data) {
  Digest d = Digest::Sha256();
  d.Update(data);
  return d.Final();
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n) == nullptr) {
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

std::string ToBase64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace popvault::s3
