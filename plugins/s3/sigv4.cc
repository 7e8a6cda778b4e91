#include "sigv4.h"

#include <algorithm>
#include <map>

#include "digest.h"

namespace popvault::s3 {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Sorted by encoded name, then encoded value (SigV4 sorts the encoded forms).
std::vector<std::pair<std::string, std::string>> EncodeSorted(const NameValues& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  return encoded;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Trims the value and collapses every run of spaces to one.
std::string CanonicalValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string EncodeQuery(const NameValues& query) {
  std::string out;
  for (const auto& [name, value] : EncodeSorted(query)) {
    if (!out.empty()) out.push_back('&');
    out += name;
    if (!value.empty()) out += "=" + value;
  }
  return out;
}

std::string CanonicalQuery(const NameValues& query) {
  std::string out;
  for (const auto& [name, value] : EncodeSorted(query)) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

std::string CanonicalHeaders(const NameValues& headers, std::string* signed_headers) {
  std::map<std::string, std::string> merged;  // sorted by lower-case name
  for (const auto& [name, value] : headers) {
    auto [it, inserted] = merged.try_emplace(ToLower(name), CanonicalValue(value));
    if (!inserted) it->second.append(",").append(CanonicalValue(value));
  }
  std::string out;
  signed_headers->clear();
  for (const auto& [name, value] : merged) {
    out += name + ":" + value + "\n";
    if (!signed_headers->empty()) signed_headers->push_back(';');
    *signed_headers += name;
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& request) {
  std::string signed_headers;
  const std::string headers = CanonicalHeaders(request.headers, &signed_headers);
  return request.method + "\n" + UriEncode(request.path, true) + "\n" +
         CanonicalQuery(request.query) + "\n" + headers + "\n" + signed_headers + "\n" +
         request.payload_hash;
}

std::string CredentialScope(const SigV4Scope& scope) {
  return scope.amz_date.substr(0, 8) + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

std::string StringToSign(const SigV4Scope& scope, std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + CredentialScope(scope) + "\n" +
         ToHex(Sha256(canonical_request));
}

std::string Signature(std::string_view secret_key, const SigV4Scope& scope,
                      std::string_view string_to_sign) {
  std::string key = HmacSha256("AWS4" + std::string(secret_key), scope.amz_date.substr(0, 8));
  key = HmacSha256(key, scope.region);
  key = HmacSha256(key, scope.service);
  key = HmacSha256(key, "aws4_request");
  return ToHex(HmacSha256(key, string_to_sign));
}

std::string Authorization(const SigV4Request& request, const SigV4Credentials& credentials,
                          const SigV4Scope& scope) {
  std::string signed_headers;
  CanonicalHeaders(request.headers, &signed_headers);
  const std::string sts = StringToSign(scope, CanonicalRequest(request));
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key + "/" + CredentialScope(scope) +
         ", SignedHeaders=" + signed_headers +
         ", Signature=" + Signature(credentials.secret_key, scope, sts);
}

}  // namespace popvault::s3
