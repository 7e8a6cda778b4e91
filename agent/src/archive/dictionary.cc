#include "archive/dictionary.h"

#include "common/sha256.h"

#define ZDICT_STATIC_LINKING_ONLY  // the fastCover trainer
#include <zdict.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>

namespace popvault {
namespace {

constexpr uint32_t kDictionaryMagic = 0xEC30A437;
constexpr std::string_view kDictionaryPrefix = "dicts/";
constexpr std::string_view kDictionarySuffix = ".zdict";

uint32_t ReadLE32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

}  // namespace

Status ZstdDictionary::Load(std::string bytes, std::shared_ptr<const ZstdDictionary>* out) {
  const uint32_t id = DictionaryIdOf(bytes);
  if (id == 0) {
    return Status::InvalidArgument("not a zstd dictionary with an ID (" +
                                   std::to_string(bytes.size()) + " bytes)");
  }
  if (bytes.size() > kMaxDictionaryBytes) {
    return Status::InvalidArgument("dictionary " + std::to_string(id) + " is larger than " +
                                   std::to_string(kMaxDictionaryBytes) + " bytes");
  }
  std::shared_ptr<ZstdDictionary> dict(new ZstdDictionary());
  dict->id_ = id;
  dict->bytes_ = std::move(bytes);
  dict->sha256_ = Sha256::Hex(dict->bytes_);
  // Parses the entropy tables: damaged ones make this fail.
  dict->ddict_ = ZSTD_createDDict(dict->bytes_.data(), dict->bytes_.size());
  if (dict->ddict_ == nullptr) {
    return Status::InvalidArgument("dictionary " + std::to_string(id) +
                                   ": zstd rejects its tables");
  }
  *out = std::move(dict);
  return Status::OK();
}

ZstdDictionary::~ZstdDictionary() {
  ZSTD_freeDDict(ddict_);
  for (auto& [level, cdict] : cdicts_) ZSTD_freeCDict(cdict);
}

std::string ZstdDictionary::key() const { return DictionaryKey(id_, sha256_); }

const ZSTD_CDict* ZstdDictionary::cdict(int level) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cdicts_.find(level);
  if (it != cdicts_.end()) return it->second;
  ZSTD_CDict* c = ZSTD_createCDict(bytes_.data(), bytes_.size(), level);
  if (c != nullptr) cdicts_.emplace(level, c);
  return c;
}

std::string DictionaryKey(uint32_t id, const std::string& sha256) {
  return std::string(kDictionaryPrefix) + std::to_string(id) + "-" + sha256 +
         std::string(kDictionarySuffix);
}

bool ParseDictionaryKey(std::string_view key, uint32_t* id, std::string* sha256) {
  if (!key.starts_with(kDictionaryPrefix) || !key.ends_with(kDictionarySuffix)) return false;
  key.remove_prefix(kDictionaryPrefix.size());
  key.remove_suffix(kDictionarySuffix.size());
  const size_t dash = key.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 10) return false;
  const std::string_view digits = key.substr(0, dash), hex = key.substr(dash + 1);
  if (digits.find_first_not_of("0123456789") != std::string_view::npos) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;  // one spelling per ID
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return false;
  if (value == 0 || value > UINT32_MAX) return false;
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return false;
  }
  *id = static_cast<uint32_t>(value);
  sha256->assign(hex);
  return true;
}

uint32_t DictionaryIdOf(std::string_view bytes) {
  if (bytes.size() < 8 || ReadLE32(bytes.data()) != kDictionaryMagic) return 0;
  return ReadLE32(bytes.data() + 4);
}

std::string WithDictionaryId(std::string bytes, uint32_t id) {
  if (DictionaryIdOf(bytes) == 0) return bytes;
  for (int i = 0; i < 4; ++i) bytes[4 + i] = static_cast<char>((id >> (8 * i)) & 0xFF);
  return bytes;
}

uint32_t AlternativeDictionaryId(const std::string& sha256_hex, unsigned i) {
  // 8 hex digits of the hash per try; past the hash's end, mix in i.
  const size_t offset = (i % 8) * 8;
  uint32_t value = 0;
  const std::string_view digits = std::string_view(sha256_hex).substr(offset, 8);
  std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
  value ^= (i / 8) * 0x9E3779B9u;
  constexpr uint32_t kSpan = kMaxUserDictionaryId - kMinUserDictionaryId + 1;
  return kMinUserDictionaryId + value % kSpan;
}

Status TrainDictionary(const std::vector<std::string>& samples,
                       const DictionaryTrainingOptions& options, std::string* dictionary) {
  dictionary->clear();
  std::string flat;
  std::vector<size_t> sizes;
  for (const std::string& s : samples) {
    const size_t n = std::min(s.size(), options.sample_bytes);
    if (n == 0) continue;
    flat.append(s.data(), n);
    sizes.push_back(n);
  }
  if (sizes.size() < std::max<size_t>(options.min_samples, 1)) {
    return Status::InvalidArgument("dictionary training: " + std::to_string(sizes.size()) +
                                   " samples, at least " + std::to_string(options.min_samples) +
                                   " needed");
  }
  if (flat.size() < kMinTrainingBytes) {
    return Status::InvalidArgument("dictionary training: " + std::to_string(flat.size()) +
                                   " bytes of samples, at least " +
                                   std::to_string(kMinTrainingBytes) + " needed");
  }
  if (options.max_dictionary_bytes < 1024) {
    return Status::InvalidArgument("dictionary training: a dictionary needs at least 1 KiB");
  }
  std::string buffer(options.max_dictionary_bytes, '\0');
  auto train = [&](unsigned k, unsigned d, std::string* out) {
    ZDICT_fastCover_params_t params{};
    params.k = k;
    params.d = d;
    params.steps = options.steps;
    params.nbThreads = 1;
    params.zParams.compressionLevel = options.compression_level;
    params.zParams.notificationLevel = 0;
    params.zParams.dictID = 0;  // zstd derives it from the content, in the user range
    const unsigned n = static_cast<unsigned>(sizes.size());
    const size_t r = k != 0 && d != 0
                         ? ZDICT_trainFromBuffer_fastCover(out->data(), out->size(), flat.data(),
                                                           sizes.data(), n, params)
                         : ZDICT_optimizeTrainFromBuffer_fastCover(
                               out->data(), out->size(), flat.data(), sizes.data(), n, &params);
    if (!ZDICT_isError(r)) out->resize(r);
    return r;
  };
  size_t r = train(options.k, options.d, &buffer);
  const bool searched = options.k == 0 || options.d == 0;
  if (!ZDICT_isError(r) && r < options.max_dictionary_bytes / 4 &&
      flat.size() >= 4 * options.max_dictionary_bytes) {
    std::string other(options.max_dictionary_bytes, '\0');
    const size_t r2 = searched ? train(1000, 8, &other) : train(0, 0, &other);
    if (!ZDICT_isError(r2) && r2 > r) {
      buffer.swap(other);
      r = r2;
    }
  }
  if (ZDICT_isError(r)) {
    return Status::InvalidArgument("dictionary training over " + std::to_string(sizes.size()) +
                                   " samples (" + std::to_string(flat.size()) +
                                   " bytes) failed: " + ZDICT_getErrorName(r));
  }
  uint32_t id = DictionaryIdOf(buffer);
  if (id < kMinUserDictionaryId || id > kMaxUserDictionaryId) {
    id = AlternativeDictionaryId(Sha256::Hex(buffer), 0);
    buffer = WithDictionaryId(std::move(buffer), id);
  }
  std::shared_ptr<const ZstdDictionary> check;
  POPVAULT_RETURN_IF_ERROR(ZstdDictionary::Load(buffer, &check)
                               .WithContext("dictionary training produced an unusable dictionary"));
  *dictionary = std::move(buffer);
  return Status::OK();
}

bool Codec::operator==(const Codec& other) const {
  if (level != other.level) return false;
  if (!dictionary || !other.dictionary) return !dictionary && !other.dictionary;
  return dictionary->sha256() == other.dictionary->sha256();
}

std::string Codec::ToString() const {
  std::string s = "zstd -" + std::to_string(level);
  if (dictionary) s += " dictionary " + std::to_string(dictionary->id());
  return s;
}

}  // namespace popvault
