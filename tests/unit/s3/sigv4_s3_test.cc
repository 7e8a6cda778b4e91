// The S3 flavour of SigV4: the worked examples from the Amazon S3 API
// reference ("Signature Calculations for the Authorization Header"), and
// hand-checked canonical forms of the keys and queries this plugin sends.
#include <catch2/catch.hpp>

#include "digest.h"
#include "sigv4.h"

namespace popvault::s3 {
namespace {

const SigV4Credentials kAws{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const SigV4Scope kScope{"20130524T000000Z", "us-east-1", "s3"};
const std::string kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string SignatureOf(const std::string& authz) {
  return authz.substr(authz.rfind("Signature=") + 10);
}

TEST_CASE("S3 example: GET object with a Range header") {
  const SigV4Request r{"GET",
                       "/test.txt",
                       {},
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"Range", "bytes=0-9"},
                        {"x-amz-content-sha256", kEmptySha256},
                        {"x-amz-date", "20130524T000000Z"}},
                       kEmptySha256};
  CHECK(CanonicalRequest(r) ==
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:" +
            kEmptySha256 +
            "\nx-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n" +
            kEmptySha256);
  CHECK(SignatureOf(Authorization(r, kAws, kScope)) ==
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("S3 example: PUT object, '$' in the key, payload hash signed") {
  const std::string payload_hash = ToHex(Sha256("Welcome to Amazon S3."));
  CHECK(payload_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const SigV4Request r{"PUT",
                       "/test$file.text",
                       {},
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"x-amz-date", "20130524T000000Z"},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                        {"x-amz-content-sha256", payload_hash}},
                       payload_hash};
  CHECK(CanonicalRequest(r).substr(0, 21) == "PUT\n/test%24file.text");
  CHECK(SignatureOf(Authorization(r, kAws, kScope)) ==
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("S3 example: GET bucket (list objects) with a query") {
  const SigV4Request r{"GET",
                       "/",
                       {{"prefix", "J"}, {"max-keys", "2"}},
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"x-amz-content-sha256", kEmptySha256},
                        {"x-amz-date", "20130524T000000Z"}},
                       kEmptySha256};
  CHECK(CanonicalQuery(r.query) == "max-keys=2&prefix=J");
  CHECK(SignatureOf(Authorization(r, kAws, kScope)) ==
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST_CASE("S3 canonical URI: one encoding per byte, '/' kept, no normalisation") {
  CHECK(UriEncode("/bucket/my key/\xC3\xBC~x+y=z.txt", true) ==
        "/bucket/my%20key/%C3%BC~x%2By%3Dz.txt");
  CHECK(UriEncode("/b/a/./c//d/../e", true) == "/b/a/./c//d/../e");
  CHECK(UriEncode("-._~AZaz09", false) == "-._~AZaz09");
  CHECK(UriEncode("a/b%c", false) == "a%2Fb%25c");
  CHECK(UriEncode("\x7f\xff", false) == "%7F%FF");
}

TEST_CASE("ListObjectsV2 query: continuation token encoded, names sorted") {
  const NameValues query = {{"list-type", "2"},
                            {"prefix", "popvault/ab"},
                            {"continuation-token", "1ueGcxLPRx1Tr/XYExHnh+bYL=="}};
  const std::string expected =
      "continuation-token=1ueGcxLPRx1Tr%2FXYExHnh%2BbYL%3D%3D&list-type=2&prefix=popvault%2Fab";
  CHECK(CanonicalQuery(query) == expected);
  CHECK(EncodeQuery(query) == expected);  // the wire form is what was signed
}

TEST_CASE("a value-less query name is 'name=' when signed and 'name' on the wire") {
  const NameValues query = {{"uploads", ""}};
  CHECK(CanonicalQuery(query) == "uploads=");
  CHECK(EncodeQuery(query) == "uploads");
  CHECK(CanonicalQuery({{"uploadId", "a b"}, {"partNumber", "10"}}) ==
        "partNumber=10&uploadId=a%20b");
}

TEST_CASE("canonical headers: lower-case names, trimmed values, repeats joined") {
  std::string signed_headers;
  CHECK(CanonicalHeaders({{"X-Amz-Date", " 1 "},
                          {"Content-MD5", "abc=="},
                          {"x-a", "p   q"},
                          {"X-A", "r"},
                          {"Host", "h:7480"}},
                         &signed_headers) ==
        "content-md5:abc==\nhost:h:7480\nx-a:p q,r\nx-amz-date:1\n");
  CHECK(signed_headers == "content-md5;host;x-a;x-amz-date");
}

TEST_CASE("a session token is signed when given as a header") {
  SigV4Request r{"GET", "/", {}, {{"Host", "h"}, {"X-Amz-Date", "20130524T000000Z"}}, kEmptySha256};
  const std::string without = Authorization(r, kAws, kScope);
  r.headers.emplace_back("X-Amz-Security-Token", "token");
  const std::string with = Authorization(r, kAws, kScope);
  CHECK(with.find("SignedHeaders=host;x-amz-date;x-amz-security-token,") != std::string::npos);
  CHECK(SignatureOf(with) != SignatureOf(without));
}

}  // namespace
}  // namespace popvault::s3
