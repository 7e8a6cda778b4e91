// The few S3 XML documents the plugin reads and writes. Parsing uses Poco's
// DOM parser with external entities off (no file or network access from a
// response body) and matches elements by local name, so the S3 namespace
// may or may not be declared. Bodies are size-capped by the caller.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "popvault/status.h"

namespace popvault::s3 {

// <Error><Code/><Message/><RequestId/></Error>
struct S3Error {
  std::string code;
  std::string message;
  std::string request_id;
};

// True when `xml` is an <Error> document (S3 sends some errors with status
// 200, e.g. from CompleteMultipartUpload); fills *error.
bool ParseError(std::string_view xml, S3Error* error);

// One page of a ListObjectsV2 response.
struct ListPage {
  std::vector<std::string> keys;  // <Contents><Key>, in the server's (ascending) order
  bool truncated = false;
  std::string next_token;  // <NextContinuationToken>; required when truncated
};

// Protocol error (with the reason) for anything but a well-formed
// <ListBucketResult>, or a truncated page without a continuation token.
Status ParseListPage(std::string_view xml, ListPage* page);

// <InitiateMultipartUploadResult><UploadId> (non-empty).
Status ParseUploadId(std::string_view xml, std::string* upload_id);

// The CompleteMultipartUpload request body for parts 1..etags.size().
std::string CompleteMultipartBody(const std::vector<std::string>& etags);

}  // namespace popvault::s3
