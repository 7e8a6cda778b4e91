// The s3 plugin: [store.NAME] plugin = s3, endpoint = URL, bucket = NAME, ...
// (options below; semantics in s3_storage.h).
#include <cstdlib>

#include "popvault/storage_plugin.h"
#include "s3_storage.h"

namespace popvault {
namespace {

class S3Plugin : public StoragePlugin {
 public:
  std::vector<PluginOption> Options() const override {
    return {
        {.name = "endpoint",
         .required = true,
         .description = "S3 endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com or "
                        "http://127.0.0.1:7480"},
        {.name = "bucket", .required = true, .description = "bucket (must exist)"},
        {.name = "allow_http",
         .description = "true allows an http:// endpoint that is not on this machine "
                        "(mail then travels unencrypted; default false)"},
        {.name = "region", .description = "signing region (default us-east-1)"},
        {.name = "prefix", .description = "prepended to every object key, e.g. popvault/"},
        {.name = "addressing",
         .description = "path or virtual (default virtual; path for IP address endpoints)"},
        {.name = "ca_file",
         .is_path = true,
         .description = "PEM CA certificates for an https endpoint (default: system CAs)"},
        {.name = "access_key",
         .description = "access key id (default: AWS_ACCESS_KEY_ID from the environment)"},
        {.name = "secret_key", .secret = true, .description = "secret access key"},
        {.name = "secret_key_file",
         .is_path = true,
         .description = "file holding the secret access key"},
        {.name = "multipart_threshold",
         .description = "objects larger than this use multipart upload (default 64M)"},
        {.name = "multipart_part_size",
         .description = "multipart part size, at least 5M (default 16M)"},
        {.name = "max_retries",
         .description = "retries of a failed request (5xx, 429, network) (default 5)"},
        {.name = "timeout", .description = "network timeout in seconds (default 60)"},
    };
  }

  Status Open(const std::map<std::string, std::string>& options,
              std::unique_ptr<Storage>* storage) override {
    s3::S3StorageOptions parsed;
    POPVAULT_RETURN_IF_ERROR(s3::ParseS3Options(options, &std::getenv, &parsed));
    return s3::OpenS3Storage(parsed, storage);
  }
};

}  // namespace
}  // namespace popvault

POPVAULT_STORAGE_PLUGIN(popvault::S3Plugin)
