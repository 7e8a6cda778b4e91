// AWS Signature Version 4 (header auth), as a pure function of its inputs:
// no clock, no network, no environment. See
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
//
// S3 rules, which this signer implements: the canonical URI is the path
// URI-encoded once per segment ('/' kept), and is NOT normalised ("a//b" and
// "a/./b" are distinct S3 keys). Generic AWS services additionally normalise
// paths (RFC 3986 dot segments, repeated slashes); that is not implemented,
// which is why the test suite's normalize-path cases do not apply.
//
// Header values are trimmed and inner runs of spaces collapsed; repeated
// header names are joined with ',' in the order given; every header passed
// is signed.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popvault::s3 {

using NameValues = std::vector<std::pair<std::string, std::string>>;

struct SigV4Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty unless temporary (STS) credentials
};

struct SigV4Request {
  std::string method;        // "GET", "PUT", ...
  std::string path;          // decoded (not percent-encoded), starts with '/'
  NameValues query;          // decoded names and values, any order
  NameValues headers;        // as sent, including Host and X-Amz-Date
  std::string payload_hash;  // hex SHA-256 of the body (or UNSIGNED-PAYLOAD)
};

struct SigV4Scope {
  std::string amz_date;  // "YYYYMMDDTHHMMSSZ", the X-Amz-Date value
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
};

// Percent-encodes every byte except A-Z a-z 0-9 - . _ ~ (and '/' when
// keep_slash), with upper-case hex digits.
std::string UriEncode(std::string_view s, bool keep_slash);

// The wire form of `query` ("a=1&b" : a value-less name has no '='), in the
// canonical order, so that what is sent is exactly what was signed.
std::string EncodeQuery(const NameValues& query);

// Canonical request pieces.
std::string CanonicalQuery(const NameValues& query);
std::string CanonicalHeaders(const NameValues& headers, std::string* signed_headers);
std::string CanonicalRequest(const SigV4Request& request);

// "<date>/<region>/<service>/aws4_request".
std::string CredentialScope(const SigV4Scope& scope);
std::string StringToSign(const SigV4Scope& scope, std::string_view canonical_request);
// Hex signature of `string_to_sign` under the key derived from `secret_key`.
std::string Signature(std::string_view secret_key, const SigV4Scope& scope,
                      std::string_view string_to_sign);

// The Authorization header value for `request`. The session token, if any,
// must already be among the headers (as X-Amz-Security-Token): S3 signs it.
std::string Authorization(const SigV4Request& request, const SigV4Credentials& credentials,
                          const SigV4Scope& scope);

}  // namespace popvault::s3
