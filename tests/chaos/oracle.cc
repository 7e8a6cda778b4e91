#include "oracle.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <zstd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "common/sha256.h"

namespace popvault::chaos {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Decompresses every frame of `compressed`; false with *why on bad data.
bool Decompress(const std::string& compressed, std::string* out, std::string* why) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  size_t hint = 1;  // 0 once a frame is complete and flushed
  bool full = false;
  while (in.pos < in.size || full) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    hint = ZSTD_decompressStream(dctx.get(), &o, &in);
    if (ZSTD_isError(hint)) {
      *why = std::string("zstd: ") + ZSTD_getErrorName(hint);
      return false;
    }
    out->append(buf.data(), o.pos);
    full = o.pos == o.size;
  }
  if (hint != 0) {
    *why = "zstd: truncated frame";
    return false;
  }
  return true;
}

}  // namespace

bool Oracle::ArchivedEverywhere(const Mail& mail, std::string* why) const {
  for (const auto& [root, name] : stores_) {
    const std::string path =
        root + "/messages/" + mail.sha256.substr(0, 2) + "/" + mail.sha256 + ".zst";
    std::string compressed, plain, error;
    if (!ReadFile(path, &compressed)) {
      *why = "store '" + name + "' has no " + path;
      return false;
    }
    if (!Decompress(compressed, &plain, &error)) {
      *why = "store '" + name + "': " + path + ": " + error;
      return false;
    }
    // The SHA-256 stands for the bytes, which the harness frees once the
    // message has left the server.
    if (plain.size() != mail.size || Sha256::Hex(plain) != mail.sha256) {
      *why = "store '" + name + "': " + path + " decompresses to " + std::to_string(plain.size()) +
             " bytes that differ from the message's " + std::to_string(mail.size);
      return false;
    }
  }
  return true;
}

std::map<std::string, int> Oracle::AuditedDeletions(const std::string& path,
                                                    const std::string& account, std::string* bad) {
  std::map<std::string, int> counts;
  std::ifstream in(path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    try {
      auto object = Poco::JSON::Parser().parse(line).extract<Poco::JSON::Object::Ptr>();
      if (object->optValue<std::string>("event", "deleted") != "deleted" ||
          object->getValue<std::string>("account") != account) {
        continue;
      }
      counts[object->getValue<std::string>("sha256")]++;
    } catch (const Poco::Exception& e) {
      counts[""]++;
      *bad = path + ":" + std::to_string(number) + ": " + e.displayText();
    }
  }
  return counts;
}

}  // namespace popvault::chaos
