// S3 options for the conformance suite: a new bucket per backend instance on
// the Ceph RGW of the CTest fixture "rgw" (see tests/fixtures/README.md).
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>

#include "conformance_backends.h"
#include "s3_client.h"

namespace popvault {
namespace {

std::map<std::string, std::string> ReadEnv(const std::string& path) {
  std::map<std::string, std::string> vars;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  INFO("RGW fixture env " << path << " (is the CTest fixture 'rgw' running?)");
  REQUIRE(vars.count("S3_ENDPOINT"));
  return vars;
}

}  // namespace

std::map<std::string, std::string> ConformanceBackend::S3Options() {
  static std::atomic<int> buckets{0};
  std::map<std::string, std::string> env = ReadEnv(POPVAULT_RGW_ENV);
  const std::string bucket =
      "conformance-" + std::to_string(getpid()) + "-" + std::to_string(++buckets);

  s3::S3Config config;
  config.https = false;
  const std::string endpoint = env["S3_ENDPOINT"];  // http://127.0.0.1:PORT
  const size_t colon = endpoint.rfind(':');
  config.host =
      endpoint.substr(std::string("http://").size(), colon - std::string("http://").size());
  config.port = static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1)));
  config.bucket = bucket;
  config.region = env["S3_REGION"];
  config.virtual_host = false;
  config.credentials = {env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], ""};
  std::unique_ptr<s3::S3Client> client;
  REQUIRE(s3::S3Client::Create(config, &client).ok());
  Status created = client->CreateBucket();
  INFO(created.ToString());
  REQUIRE(created.ok());

  return {{"endpoint", endpoint},
          {"bucket", bucket},
          {"region", env["S3_REGION"]},
          {"addressing", "path"},
          {"access_key", env["S3_ACCESS_KEY"]},
          {"secret_key", env["S3_SECRET_KEY"]},
          // Small parts, so the 100 MB object goes through multipart upload.
          {"multipart_threshold", "16M"},
          {"multipart_part_size", "8M"}};
}

}  // namespace popvault
