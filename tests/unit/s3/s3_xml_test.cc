#include "s3_xml.h"

#include <catch2/catch.hpp>

namespace popvault::s3 {
namespace {

TEST_CASE("S3 error bodies: code, message and request id") {
  S3Error e;
  REQUIRE(ParseError(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message>
<RequestId>tx00000-abc</RequestId><HostId>x</HostId></Error>)",
                     &e));
  CHECK(e.code == "SignatureDoesNotMatch");
  CHECK(e.message == "The request signature we calculated does not match");
  CHECK(e.request_id == "tx00000-abc");
}

TEST_CASE("S3 error bodies: namespaced, entities decoded, not-an-error and garbage") {
  S3Error e;
  REQUIRE(
      ParseError(R"(<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Code>BadDigest</Code>)"
                 R"(<Message>a &amp; b &lt;c&gt;</Message></Error>)",
                 &e));
  CHECK(e.code == "BadDigest");
  CHECK(e.message == "a & b <c>");
  CHECK(e.request_id.empty());
  CHECK_FALSE(ParseError("<CompleteMultipartUploadResult/>", &e));
  CHECK_FALSE(ParseError("", &e));
  CHECK_FALSE(ParseError("<Error><Code>x</Error>", &e));
  CHECK_FALSE(ParseError("<html>502 Bad Gateway</html>", &e));
}

TEST_CASE("S3 error bodies: no external entities are resolved") {
  S3Error e;
  const bool parsed = ParseError(
      R"(<?xml version="1.0"?><!DOCTYPE Error [<!ENTITY x SYSTEM "file:///etc/hostname">]>)"
      R"(<Error><Code>&x;</Code></Error>)",
      &e);
  if (parsed) CHECK(e.code.empty());
}

TEST_CASE("ListObjectsV2: a truncated page with a continuation token") {
  ListPage page;
  REQUIRE(ParseListPage(
              R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>p/a</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;x&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>p/b&amp;c</Key><Size>4</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnh+bYL==</NextContinuationToken>
</ListBucketResult>)",
              &page)
              .ok());
  CHECK(page.keys == std::vector<std::string>{"p/a", "p/b&c"});
  CHECK(page.truncated);
  CHECK(page.next_token == "1ueGcxLPRx1Tr/XYExHnh+bYL==");
}

TEST_CASE("ListObjectsV2: last and empty pages") {
  ListPage page;
  page.keys = {"stale"};
  REQUIRE(ParseListPage("<ListBucketResult><IsTruncated>false</IsTruncated>"
                        "<Contents><Key>z</Key></Contents></ListBucketResult>",
                        &page)
              .ok());
  CHECK(page.keys == std::vector<std::string>{"z"});
  CHECK_FALSE(page.truncated);
  REQUIRE(ParseListPage("<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>", &page).ok());
  CHECK(page.keys.empty());
  CHECK_FALSE(page.truncated);
}

TEST_CASE("ListObjectsV2: malformed pages are protocol errors") {
  ListPage page;
  CHECK(ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", &page)
            .code() == Status::Code::kProtocol);
  CHECK(ParseListPage("<Error><Code>x</Code></Error>", &page).code() == Status::Code::kProtocol);
  CHECK(ParseListPage("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
                      &page)
            .code() == Status::Code::kProtocol);
  CHECK(ParseListPage("<ListBucketResult>", &page).code() == Status::Code::kProtocol);
}

TEST_CASE("multipart documents") {
  std::string id;
  REQUIRE(ParseUploadId("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                        "<UploadId>2~abc</UploadId></InitiateMultipartUploadResult>",
                        &id)
              .ok());
  CHECK(id == "2~abc");
  CHECK(ParseUploadId("<InitiateMultipartUploadResult/>", &id).code() == Status::Code::kProtocol);
  CHECK(CompleteMultipartBody({"\"e1\"", "\"e2\""}) ==
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag>"
        "</Part><Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>"
        "</CompleteMultipartUpload>");
}

}  // namespace
}  // namespace popvault::s3
