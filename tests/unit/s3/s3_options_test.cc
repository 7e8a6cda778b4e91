#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "s3_storage.h"

namespace popvault::s3 {
namespace {

using Options = std::map<std::string, std::string>;

const char* NoEnv(const char*) { return nullptr; }

Options Base() {
  return {{"endpoint", "http://127.0.0.1:7480"},
          {"bucket", "mail"},
          {"access_key", "AK"},
          {"secret_key", "TopSecret123"}};
}

// Base() with `changes` applied (map assignment from string literals trips
// g++ 12's bogus -Wrestrict at -O3).
Options With(const Options& changes, Options o = Base()) {
  for (const auto& [key, value] : changes) o.insert_or_assign(key, value);
  return o;
}

Status Parse(const Options& o, S3StorageOptions* out) { return ParseS3Options(o, NoEnv, out); }

// The option an InvalidArgument is about, or "" when OK.
std::string Rejected(const Options& o) {
  S3StorageOptions out;
  const Status s = Parse(o, &out);
  if (s.ok()) return "";
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("TopSecret123") == std::string::npos);
  return s.message().substr(0, s.message().find(':'));
}

TEST_CASE("options: defaults, and path-style for an IP endpoint") {
  S3StorageOptions o;
  REQUIRE(Parse(Base(), &o).ok());
  CHECK_FALSE(o.client.https);
  CHECK(o.client.host == "127.0.0.1");
  CHECK(o.client.port == 7480);
  CHECK(o.client.region == "us-east-1");
  CHECK_FALSE(o.client.virtual_host);
  CHECK(o.client.credentials.access_key == "AK");
  CHECK(o.client.credentials.secret_key == "TopSecret123");
  CHECK(o.client.retry.max_attempts == 6);
  CHECK(o.client.timeout == std::chrono::seconds(60));
  CHECK(o.multipart_threshold == 64u << 20);
  CHECK(o.multipart_part_size == 16u << 20);
  CHECK(o.prefix.empty());
}

TEST_CASE("options: AWS endpoint defaults to virtual-host addressing on 443") {
  Options in = With({{"endpoint", "https://s3.eu-central-1.amazonaws.com"},
                     {"region", "eu-central-1"},
                     {"prefix", "popvault/"},
                     {"multipart_threshold", "128M"},
                     {"multipart_part_size", "8MiB"},
                     {"max_retries", "0"},
                     {"timeout", "5"}});
  S3StorageOptions o;
  REQUIRE(Parse(in, &o).ok());
  CHECK(o.client.https);
  CHECK(o.client.port == 443);
  CHECK(o.client.virtual_host);
  CHECK(o.prefix == "popvault/");
  CHECK(o.multipart_threshold == 128u << 20);
  CHECK(o.multipart_part_size == 8u << 20);
  CHECK(o.client.retry.max_attempts == 1);
  CHECK(o.client.timeout == std::chrono::seconds(5));
  REQUIRE(Parse(With({{"addressing", "path"}}, in), &o).ok());
  CHECK_FALSE(o.client.virtual_host);
}

TEST_CASE("options: each bad value names its option") {
  auto with = [](const std::string& key, const std::string& value) {
    return Rejected(With({{key, value}}));
  };
  CHECK(with("endpoint", "ftp://x") == "endpoint");
  CHECK(with("endpoint", "http://h/path") == "endpoint");
  CHECK(with("endpoint", "http://u:p@h") == "endpoint");
  CHECK(with("endpoint", "") == "endpoint");
  CHECK(with("bucket", "Mail") == "bucket");
  CHECK(with("bucket", "ab") == "bucket");
  CHECK(with("region", "") == "region");
  CHECK(with("prefix", "/abs") == "prefix");
  CHECK(with("prefix", "a/../b") == "prefix");
  CHECK(with("prefix", "sp ace") == "prefix");
  CHECK(with("addressing", "virtual") == "addressing");  // IP endpoint
  CHECK(with("addressing", "dns") == "addressing");
  CHECK(with("ca_file", "/etc/ssl/ca.pem") == "ca_file");  // http endpoint
  CHECK(with("multipart_part_size", "4M") == "multipart_part_size");
  CHECK(with("multipart_part_size", "6G") == "multipart_part_size");
  CHECK(with("multipart_threshold", "12X") == "multipart_threshold");
  CHECK(with("multipart_threshold", "M") == "multipart_threshold");
  CHECK(with("max_retries", "-1") == "max_retries");
  CHECK(with("timeout", "0") == "timeout");
  CHECK(with("secret_key", "") == "secret_key");
  CHECK(with("secret_key_file", "/nonexistent/secret") == "secret_key_file");
  CHECK(Rejected(With({{"endpoint", "https://s3.amazonaws.com"}, {"bucket", "my.mail"}})) ==
        "addressing");
}

TEST_CASE("options: plain http only to this machine unless allow_http = true") {
  CHECK(Rejected(With({{"endpoint", "http://127.0.0.1:7480"}})).empty());
  CHECK(Rejected(With({{"endpoint", "http://localhost:9000"}})).empty());
  CHECK(Rejected(With({{"endpoint", "http://[::1]:9000"}})).empty());
  CHECK(Rejected(With({{"endpoint", "http://minio.lan:9000"}})) == "endpoint");
  CHECK(Rejected(With({{"endpoint", "http://minio.lan:9000"}, {"allow_http", "true"}})).empty());
  CHECK(Rejected(With({{"endpoint", "http://minio.lan:9000"}, {"allow_http", "yes"}})) ==
        "allow_http");
  CHECK(Rejected(With({{"endpoint", "https://minio.lan"}})).empty());
}

TEST_CASE("options: credentials from a secret file, trailing newline dropped") {
  const auto path = std::filesystem::temp_directory_path() / "popvault_s3_secret_test";
  std::ofstream(path) << "FileSecret\n";
  Options in = With({{"secret_key_file", path.string()}});
  CHECK(Rejected(in) == "secret_key_file");  // both given
  in.erase("secret_key");
  S3StorageOptions o;
  REQUIRE(Parse(in, &o).ok());
  CHECK(o.client.credentials.secret_key == "FileSecret");
  std::filesystem::remove(path);
}

TEST_CASE("options: credentials from the environment only when the config has none") {
  auto env = [](const char* name) -> const char* {
    const std::map<std::string, const char*> vars = {{"AWS_ACCESS_KEY_ID", "ENVAK"},
                                                     {"AWS_SECRET_ACCESS_KEY", "ENVSK"},
                                                     {"AWS_SESSION_TOKEN", "ENVTOKEN"}};
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second;
  };
  Options in = Base();
  in.erase("access_key");
  in.erase("secret_key");
  S3StorageOptions o;
  REQUIRE(ParseS3Options(in, env, &o).ok());
  CHECK(o.client.credentials.access_key == "ENVAK");
  CHECK(o.client.credentials.secret_key == "ENVSK");
  CHECK(o.client.credentials.session_token == "ENVTOKEN");
  CHECK(Rejected(in) == "access_key");  // no environment either
  REQUIRE(ParseS3Options(Base(), env, &o).ok());
  CHECK(o.client.credentials.access_key == "AK");
  CHECK(o.client.credentials.session_token.empty());
}

}  // namespace
}  // namespace popvault::s3
