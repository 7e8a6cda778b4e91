#include "s3_storage.h"

#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/URI.h>

#include <fstream>
#include <sstream>

namespace popvault::s3 {
namespace {

constexpr size_t kMaxKeySize = 512;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMinPartSize = 5 * kMiB;         // S3's minimum (but for the last part)
constexpr uint64_t kMaxPartSize = 5 * 1024 * kMiB;  // S3's maximum part and PutObject size
constexpr uint64_t kMaxParts = 10000;               // S3's maximum part count

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

bool IsKeyText(const std::string& s) {
  for (char c : s) {
    if (!IsKeyChar(c)) return false;
  }
  return s.find("..") == std::string::npos && s.find("//") == std::string::npos;
}

Status CheckKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxKeySize || key.front() == '/' || key.back() == '/' ||
      !IsKeyText(key)) {
    return Status::InvalidArgument("not a valid storage key: \"" + key + "\"");
  }
  return Status::OK();
}

Status CheckPrefix(const std::string& prefix) {
  if (prefix.size() > kMaxKeySize || !IsKeyText(prefix)) {
    return Status::InvalidArgument("not a valid storage key prefix: \"" + prefix + "\"");
  }
  return Status::OK();
}

// Reads up to `cap` bytes from `src` into *buf (Read may return less).
Status Fill(ByteSource& src, std::string* buf, size_t cap) {
  buf->resize(cap);
  size_t filled = 0;
  while (filled < cap) {
    size_t n = 0;
    POPVAULT_RETURN_IF_ERROR(src.Read(buf->data() + filled, cap - filled, &n));
    if (n == 0) break;
    filled += n;
  }
  buf->resize(filled);
  return Status::OK();
}

class S3Storage : public Storage {
 public:
  S3Storage(std::unique_ptr<S3Client> client, const S3StorageOptions& options)
      : client_(std::move(client)), options_(options) {}

  Status Put(const std::string& key, ByteSource& src) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    if (src.Size() > options_.multipart_threshold) return PutMultipart(FullKey(key), src);
    return client_->PutObject(FullKey(key), src);
  }

  Status Get(const std::string& key, ByteSink& sink) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    return client_->GetObject(FullKey(key), sink);
  }

  Status Exists(const std::string& key, bool* exists) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    return client_->HeadObject(FullKey(key), exists);
  }

  Status Remove(const std::string& key) override {
    POPVAULT_RETURN_IF_ERROR(CheckKey(key));
    return client_->DeleteObject(FullKey(key));
  }

  Status List(const std::string& prefix,
              const std::function<bool(const std::string& key)>& fn) override {
    POPVAULT_RETURN_IF_ERROR(CheckPrefix(prefix));
    ListPage page;
    do {
      POPVAULT_RETURN_IF_ERROR(client_->ListObjects(FullKey(prefix), page.next_token, &page));
      for (const std::string& s3_key : page.keys) {
        // S3 returns only keys under the prefix; anything else is skipped
        // rather than handed out with a wrong name.
        if (s3_key.compare(0, options_.prefix.size(), options_.prefix) != 0) continue;
        if (!fn(s3_key.substr(options_.prefix.size()))) return Status::OK();
      }
    } while (page.truncated);
    return Status::OK();
  }

  // Every Put and Remove is durable when S3 acknowledges it (see header).
  Status Sync() override { return Status::OK(); }

 private:
  std::string FullKey(const std::string& key) const { return options_.prefix + key; }

  // S3 allows 10,000 parts: larger objects get larger parts.
  uint64_t PartSize(uint64_t size) const {
    return std::max(options_.multipart_part_size, (size + kMaxParts - 1) / kMaxParts);
  }

  Status PutMultipart(const std::string& key, ByteSource& src) {
    std::string upload_id;
    POPVAULT_RETURN_IF_ERROR(client_->CreateMultipartUpload(key, &upload_id));
    const Status s = UploadParts(key, upload_id, src);
    if (!s.ok()) {
      // Best effort: the upload is invisible either way, this frees its parts.
      client_->AbortMultipartUpload(key, upload_id).ok();
    }
    return s;
  }

  Status UploadParts(const std::string& key, const std::string& upload_id, ByteSource& src) {
    POPVAULT_RETURN_IF_ERROR(src.Rewind());
    const size_t part_size = static_cast<size_t>(PartSize(src.Size()));
    std::vector<std::string> etags;
    std::string part;
    uint64_t total = 0;
    for (;;) {
      POPVAULT_RETURN_IF_ERROR(Fill(src, &part, part_size));
      if (part.empty()) break;
      total += part.size();
      std::string etag;
      POPVAULT_RETURN_IF_ERROR(
          client_->UploadPart(key, upload_id, static_cast<int>(etags.size() + 1), part, &etag));
      etags.push_back(std::move(etag));
      if (part.size() < part_size) break;
    }
    if (total != src.Size() || etags.empty()) {
      return Status::IOError("s3 key \"" + key + "\": source yielded " + std::to_string(total) +
                             " bytes but announced " + std::to_string(src.Size()));
    }
    return client_->CompleteMultipartUpload(key, upload_id, etags);
  }

  const std::unique_ptr<S3Client> client_;
  const S3StorageOptions options_;
};

// --- option parsing ---

using Options = std::map<std::string, std::string>;

std::string Get(const Options& options, const std::string& name) {
  auto it = options.find(name);
  return it == options.end() ? std::string() : it->second;
}

Status Invalid(const std::string& option, const std::string& why) {
  return Status::InvalidArgument(option + ": " + why);
}

// "123", "64M", "16MiB", "1G": bytes, with optional binary K/M/G suffix.
Status ParseSize(const Options& options, const std::string& name, uint64_t min, uint64_t max,
                 uint64_t* out) {
  const std::string text = Get(options, name);
  if (text.empty()) return Status::OK();
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string suffix = text.substr(digits);
  uint64_t unit = 1;
  if (suffix == "K" || suffix == "KiB") unit = 1 << 10;
  if (suffix == "M" || suffix == "MiB") unit = 1 << 20;
  if (suffix == "G" || suffix == "GiB") unit = 1 << 30;
  Poco::UInt64 value = 0;
  if (digits == 0 || (unit == 1 && !suffix.empty()) ||
      !Poco::NumberParser::tryParseUnsigned64(text.substr(0, digits), value) ||
      value > max / unit || value * unit < min) {
    return Invalid(name, "\"" + text + "\" is not a size from " + std::to_string(min) + " to " +
                             std::to_string(max) + " bytes (suffixes K, M, G allowed)");
  }
  *out = value * unit;
  return Status::OK();
}

Status ParseInt(const Options& options, const std::string& name, int min, int max, int* out) {
  const std::string text = Get(options, name);
  if (text.empty()) return Status::OK();
  int value = 0;
  if (!Poco::NumberParser::tryParse(text, value) || value < min || value > max) {
    return Invalid(name, "\"" + text + "\" is not a number from " + std::to_string(min) + " to " +
                             std::to_string(max));
  }
  *out = value;
  return Status::OK();
}

Status ParseEndpoint(const std::string& text, S3Config* config) {
  Poco::URI uri;
  try {
    uri = Poco::URI(text);
  } catch (const Poco::Exception& e) {
    return Invalid("endpoint", "\"" + text + "\" is not a URL: " + e.message());
  }
  if (uri.getScheme() != "http" && uri.getScheme() != "https") {
    return Invalid("endpoint", "\"" + text + "\" must start with https:// or http://");
  }
  if (uri.getHost().empty() || !uri.getUserInfo().empty() || !uri.getRawQuery().empty() ||
      !uri.getFragment().empty() || (uri.getPath() != "" && uri.getPath() != "/")) {
    return Invalid("endpoint", "\"" + text + "\" must be just scheme://host[:port]");
  }
  config->https = uri.getScheme() == "https";
  config->host = uri.getHost();
  config->port = uri.getPort();
  return Status::OK();
}

// S3 bucket naming rules (the DNS-compatible ones, which every S3 accepts).
bool IsBucketName(const std::string& b) {
  if (b.size() < 3 || b.size() > 63 || b.front() == '-' || b.front() == '.' || b.back() == '-' ||
      b.back() == '.' || b.find("..") != std::string::npos) {
    return false;
  }
  for (char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

bool IsIpOrLocalhost(const std::string& host) {
  if (host == "localhost" || host.find(':') != std::string::npos) return true;
  for (char c : host) {
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
  }
  return true;
}

// Plain http carries mail unencrypted: fine to a server on this machine,
// anywhere else only when the admin says so.
Status CheckPlainHttp(const Options& options, const S3Config& config) {
  if (config.https) return Status::OK();
  const std::string allow = Get(options, "allow_http");
  if (allow != "" && allow != "true" && allow != "false") {
    return Invalid("allow_http", "\"" + allow + "\" is neither true nor false");
  }
  const bool loopback =
      config.host == "localhost" || config.host == "::1" || config.host.rfind("127.", 0) == 0;
  if (loopback || allow == "true") return Status::OK();
  return Invalid("endpoint", "http:// would send mail unencrypted to " + config.host +
                                 "; use https://, or set allow_http = true for a trusted network");
}

Status ParseAddressing(const Options& options, S3Config* config) {
  const std::string addressing = Get(options, "addressing");
  // Virtual-host addressing needs DNS names under the endpoint's: an IP
  // address (a local RGW or MinIO) gets path-style unless told otherwise.
  const bool ip = IsIpOrLocalhost(config->host);
  if (addressing.empty()) {
    config->virtual_host = !ip;
  } else if (addressing == "path" || addressing == "virtual") {
    config->virtual_host = addressing == "virtual";
  } else {
    return Invalid("addressing", "\"" + addressing + "\" is neither \"path\" nor \"virtual\"");
  }
  if (config->virtual_host && ip) {
    return Invalid("addressing", "virtual needs a DNS name endpoint, not " + config->host);
  }
  if (config->virtual_host && config->https && config->bucket.find('.') != std::string::npos) {
    // bucket.with.dots.s3.amazonaws.com matches no wildcard certificate.
    return Invalid("addressing", "bucket names with dots need addressing = path over https");
  }
  return Status::OK();
}

Status ReadSecretFile(const std::string& path, std::string* secret) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Invalid("secret_key_file", "cannot read " + path);
  *secret = text.str();
  while (!secret->empty() && std::isspace(static_cast<unsigned char>(secret->back()))) {
    secret->pop_back();
  }
  if (secret->empty()) return Invalid("secret_key_file", path + " is empty");
  return Status::OK();
}

Status ParseCredentials(const Options& options,
                        const std::function<const char*(const char*)>& getenv,
                        SigV4Credentials* credentials) {
  const std::string access_key = Get(options, "access_key");
  std::string secret = Get(options, "secret_key");
  const std::string secret_file = Get(options, "secret_key_file");
  if (!secret.empty() && !secret_file.empty()) {
    return Invalid("secret_key_file", "give either secret_key or secret_key_file, not both");
  }
  if (!secret_file.empty()) POPVAULT_RETURN_IF_ERROR(ReadSecretFile(secret_file, &secret));
  if (access_key.empty() && secret.empty()) {
    const char* id = getenv("AWS_ACCESS_KEY_ID");
    const char* key = getenv("AWS_SECRET_ACCESS_KEY");
    const char* token = getenv("AWS_SESSION_TOKEN");
    if (id == nullptr || key == nullptr || *id == '\0' || *key == '\0') {
      return Invalid("access_key",
                     "no credentials: set access_key and secret_key (or secret_key_file), or "
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
    }
    *credentials = {id, key, token ? token : ""};
    return Status::OK();
  }
  if (access_key.empty()) return Invalid("access_key", "missing (a secret key is given)");
  if (secret.empty()) return Invalid("secret_key", "missing (access_key is given)");
  *credentials = {access_key, secret, ""};
  return Status::OK();
}

Status ParseLimits(const Options& options, S3StorageOptions* out) {
  POPVAULT_RETURN_IF_ERROR(ParseSize(options, "multipart_threshold", kMinPartSize, kMaxPartSize,
                                     &out->multipart_threshold));
  POPVAULT_RETURN_IF_ERROR(ParseSize(options, "multipart_part_size", kMinPartSize, kMaxPartSize,
                                     &out->multipart_part_size));
  int retries = out->client.retry.max_attempts - 1;
  POPVAULT_RETURN_IF_ERROR(ParseInt(options, "max_retries", 0, 20, &retries));
  out->client.retry.max_attempts = retries + 1;
  int timeout = static_cast<int>(out->client.timeout.count());
  POPVAULT_RETURN_IF_ERROR(ParseInt(options, "timeout", 1, 3600, &timeout));
  out->client.timeout = std::chrono::seconds(timeout);
  return Status::OK();
}

}  // namespace

Status ParseS3Options(const Options& options, const std::function<const char*(const char*)>& getenv,
                      S3StorageOptions* out) {
  S3StorageOptions result;
  S3Config& c = result.client;
  POPVAULT_RETURN_IF_ERROR(ParseEndpoint(Get(options, "endpoint"), &c));
  POPVAULT_RETURN_IF_ERROR(CheckPlainHttp(options, c));
  c.bucket = Get(options, "bucket");
  if (!IsBucketName(c.bucket)) {
    return Invalid("bucket", "\"" + c.bucket + "\" is not a valid S3 bucket name");
  }
  if (options.count("region")) c.region = Get(options, "region");
  if (c.region.empty() || c.region.find_first_of("/ ") != std::string::npos) {
    return Invalid("region", "\"" + c.region + "\" is not a region name");
  }
  result.prefix = Get(options, "prefix");
  if (!result.prefix.empty() &&
      (result.prefix.front() == '/' || !IsKeyText(result.prefix) || result.prefix.size() > 256)) {
    return Invalid("prefix", "\"" + result.prefix +
                                 "\" must be up to 256 of A-Z a-z 0-9 . _ - / without a leading "
                                 "'/', \"..\" or \"//\"");
  }
  POPVAULT_RETURN_IF_ERROR(ParseAddressing(options, &c));
  c.ca_file = Get(options, "ca_file");
  if (!c.ca_file.empty() && !c.https) return Invalid("ca_file", "only used with an https endpoint");
  POPVAULT_RETURN_IF_ERROR(ParseCredentials(options, getenv, &c.credentials));
  POPVAULT_RETURN_IF_ERROR(ParseLimits(options, &result));
  *out = std::move(result);
  return Status::OK();
}

Status OpenS3Storage(const S3StorageOptions& options, std::unique_ptr<Storage>* storage) {
  std::unique_ptr<S3Client> client;
  POPVAULT_RETURN_IF_ERROR(S3Client::Create(options.client, &client));
  const Status s = client->CheckBucket();
  if (s.code() == Status::Code::kNotFound) {
    return Invalid("bucket", "bucket \"" + options.client.bucket + "\" does not exist at " +
                                 options.client.host + " (popvault does not create buckets)");
  }
  POPVAULT_RETURN_IF_ERROR(s);
  *storage = std::make_unique<S3Storage>(std::move(client), options);
  return Status::OK();
}

}  // namespace popvault::s3
