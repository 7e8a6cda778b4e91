// The s3 storage backend: each Storage key is one S3 object,
// "<prefix><key>", in one bucket.
//
// Contract notes (see popvault/storage.h):
// - Atomicity: a PutObject or CompleteMultipartUpload replaces the object in
//   one step, so readers see the old object or the new one, never a mix.
// - Durability: S3 answers 200 only once the object is stored durably, so
//   Put is durable on return and Sync() has nothing to do.
// - Objects larger than multipart_threshold go up as a multipart upload,
//   reading the source once and holding one part in memory; a failed upload
//   is aborted (best effort: a lifecycle rule for incomplete multipart
//   uploads on the bucket is still advisable).
// - List is in ascending key order because ListObjectsV2 is (UTF-8 binary
//   order, which is byte order, and keys are ASCII).
// - Keys breaking the Storage key rules are rejected with InvalidArgument.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "popvault/storage.h"
#include "s3_client.h"

namespace popvault::s3 {

struct S3StorageOptions {
  S3Config client;
  std::string prefix;  // prepended to every key
  uint64_t multipart_threshold = 64 << 20;
  uint64_t multipart_part_size = 16 << 20;
};

// Builds S3StorageOptions from the plugin options (see s3_plugin.cc for the
// keys). Credentials come from access_key + secret_key (or
// secret_key_file); when the options name none, from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, looked up with `getenv`.
// Errors are InvalidArgument starting with "<option>: ".
Status ParseS3Options(const std::map<std::string, std::string>& options,
                      const std::function<const char*(const char*)>& getenv, S3StorageOptions* out);

// Opens the store after checking that the bucket exists and is usable (one
// ListObjectsV2 request). A missing bucket is an error: the plugin never creates one.
Status OpenS3Storage(const S3StorageOptions& options, std::unique_ptr<Storage>* storage);

}  // namespace popvault::s3
