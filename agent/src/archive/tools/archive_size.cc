// popvault_archive_size: how large a corpus of messages is stored per message
// as popvault stores it, against gzip -6 and zstd with and without a trained
// dictionary. Uses the archive layer's own MessageWriter and TrainDictionary,
// so the numbers are what a store would hold.
//
//   popvault_archive_size [--corpus DIR] [--train-every N] [--level L]
//                         [--dict-bytes N] [--sample-bytes N] [--max-samples N]
//                         [--k N] [--d N] [--steps N] [--train-all 0|1] [--limit N]
//
// Messages: every file MANIFEST.tsv lists (one message each, as a POP3 server
// would deliver it), once per distinct SHA-256 (the archive stores content
// once). The dictionary is trained on every N-th message (MANIFEST order) and
// measured on the others ("held out") as well as on all.
#include <Poco/DeflatingStream.h>
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "archive/dictionary.h"
#include "archive/message_writer.h"

namespace {

using popvault::Codec;
using popvault::Status;

struct Options {
  std::string corpus = "/work/shared/corpus";
  size_t train_every = 10;
  int level = 3;
  size_t limit = 0;
  size_t max_samples = 0;  // 0: every training message
  bool train_all = true;   // also train on all messages (dictionary B)
  popvault::DictionaryTrainingOptions training;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "popvault_archive_size: " << why
            << "\nusage: popvault_archive_size [--corpus DIR] [--train-every N] [--level L]"
               " [--dict-bytes N] [--sample-bytes N] [--max-samples N] [--k N] [--d N]"
               " [--steps N] [--train-all 0|1] [--limit N]\n";
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Usage("missing value after " + arg);
    const std::string value = argv[++i];
    auto number = [&]() -> size_t {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') Usage(arg + " needs a number");
      return static_cast<size_t>(v);
    };
    if (arg == "--corpus") {
      o.corpus = value;
    } else if (arg == "--train-every") {
      o.train_every = number();
    } else if (arg == "--level") {
      o.level = static_cast<int>(number());
    } else if (arg == "--dict-bytes") {
      o.training.max_dictionary_bytes = number();
    } else if (arg == "--sample-bytes") {
      o.training.sample_bytes = number();
    } else if (arg == "--max-samples") {
      o.max_samples = number();
    } else if (arg == "--k") {
      o.training.k = static_cast<unsigned>(number());
    } else if (arg == "--d") {
      o.training.d = static_cast<unsigned>(number());
    } else if (arg == "--steps") {
      o.training.steps = static_cast<unsigned>(number());
    } else if (arg == "--train-all") {
      o.train_all = number() != 0;
    } else if (arg == "--limit") {
      o.limit = number();
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (o.train_every < 2) Usage("--train-every must be at least 2");
  o.training.compression_level = o.level;
  o.training.min_samples = 10;
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "popvault_archive_size: cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Messages of the corpus, distinct content only, in MANIFEST order.
std::vector<std::string> LoadCorpus(const Options& o, size_t* files) {
  std::ifstream manifest(o.corpus + "/MANIFEST.tsv");
  if (!manifest) {
    std::cerr << "popvault_archive_size: no " << o.corpus << "/MANIFEST.tsv\n";
    std::exit(1);
  }
  std::vector<std::string> messages;
  std::set<std::string> seen;
  std::string line;
  std::getline(manifest, line);  // header
  *files = 0;
  while (std::getline(manifest, line)) {
    if (o.limit != 0 && *files >= o.limit) break;
    const std::string path = line.substr(0, line.find('\t'));
    std::string message = ReadFile(o.corpus + "/" + path);
    ++*files;
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(message);
    if (seen.insert(Poco::DigestEngine::digestToHex(sha.digest())).second) {
      messages.push_back(std::move(message));
    }
  }
  return messages;
}

class CountingBuf : public std::streambuf {
 public:
  uint64_t count = 0;

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) ++count;
    return c;
  }
  std::streamsize xsputn(const char*, std::streamsize n) override {
    count += static_cast<uint64_t>(n);
    return n;
  }
};

// Bytes of `gzip -6` of one message (gzip header and trailer included).
uint64_t GzipSize(const std::string& message) {
  CountingBuf buf;
  std::ostream out(&buf);
  Poco::DeflatingOutputStream gz(out, Poco::DeflatingStreamBuf::STREAM_GZIP, 6);
  gz.write(message.data(), static_cast<std::streamsize>(message.size()));
  gz.close();
  return buf.count;
}

// Bytes of the object popvault stores for one message with `codec`.
uint64_t StoredSize(const std::string& message, const Codec& codec) {
  popvault::MessageWriter w(std::vector<Codec>{codec}, "/tmp");
  Status s = w.Append(message.data(), message.size());
  if (s.ok()) s = w.Finish();
  if (!s.ok()) {
    std::cerr << "popvault_archive_size: " << s.ToString() << "\n";
    std::exit(1);
  }
  return w.compressed(codec).Size();
}

struct Sizes {
  size_t messages = 0;
  uint64_t raw = 0, gzip = 0, plain = 0, held_dict = 0, same_dict = 0;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string Pct(uint64_t x, uint64_t base) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", 100.0 * (double(x) - double(base)) / double(base));
  return buf;
}

void Row(const char* name, const Sizes& s, bool with_same) {
  std::printf("| %-22s | %5zu | %11llu | %11llu | %11llu | %11llu %7s |", name, s.messages,
              (unsigned long long)s.raw, (unsigned long long)s.gzip, (unsigned long long)s.plain,
              (unsigned long long)s.held_dict, Pct(s.held_dict, s.plain).c_str());
  if (with_same) {
    std::printf(" %11llu %7s |", (unsigned long long)s.same_dict,
                Pct(s.same_dict, s.plain).c_str());
  } else {
    std::printf(" %11s %7s |", "-", "");
  }
  std::printf("\n");
}

Status Train(const std::vector<const std::string*>& from, const Options& o,
             std::shared_ptr<const popvault::ZstdDictionary>* dict, double* seconds) {
  std::vector<std::string> samples;
  for (const std::string* m : from) {
    if (o.max_samples != 0 && samples.size() >= o.max_samples) break;
    samples.push_back(m->substr(0, o.training.sample_bytes));
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::string bytes;
  POPVAULT_RETURN_IF_ERROR(popvault::TrainDictionary(samples, o.training, &bytes));
  *seconds = Seconds(t0);
  return popvault::ZstdDictionary::Load(std::move(bytes), dict);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  size_t files = 0;
  const std::vector<std::string> messages = LoadCorpus(o, &files);

  std::vector<const std::string*> train, held, all;
  for (size_t i = 0; i < messages.size(); ++i) {
    (i % o.train_every == 0 ? train : held).push_back(&messages[i]);
    all.push_back(&messages[i]);
  }
  std::shared_ptr<const popvault::ZstdDictionary> held_dict, same_dict;
  double train_s = 0, same_s = 0;
  Status s = Train(train, o, &held_dict, &train_s);
  if (s.ok() && o.train_all) s = Train(all, o, &same_dict, &same_s);
  if (s.ok() && !o.train_all) same_dict = held_dict;
  if (!s.ok()) {
    std::cerr << "popvault_archive_size: " << s.ToString() << "\n";
    return 1;
  }

  const Codec plain{o.level, nullptr}, with_held{o.level, held_dict}, with_same{o.level, same_dict};
  Sizes train_sizes, held_sizes, all_sizes;
  double plain_s = 0, dict_s = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& m = messages[i];
    Sizes& part = i % o.train_every == 0 ? train_sizes : held_sizes;
    const uint64_t gz = GzipSize(m);
    auto t0 = std::chrono::steady_clock::now();
    const uint64_t p = StoredSize(m, plain);
    plain_s += Seconds(t0);
    t0 = std::chrono::steady_clock::now();
    const uint64_t hd = StoredSize(m, with_held);
    dict_s += Seconds(t0);
    const uint64_t sd = StoredSize(m, with_same);
    for (Sizes* z : {&part, &all_sizes}) {
      z->messages++;
      z->raw += m.size();
      z->gzip += gz;
      z->plain += p;
      z->held_dict += hd;
      z->same_dict += sd;
    }
  }

  std::printf("corpus %s: %zu files, %zu distinct messages\n", o.corpus.c_str(), files,
              messages.size());
  std::printf(
      "dictionary A: trained on every %zu-th message (%zu, first %zu bytes of each%s): id %u, "
      "%zu bytes, %.2f s\n",
      o.train_every, train.size(), o.training.sample_bytes,
      o.max_samples ? (", at most " + std::to_string(o.max_samples)).c_str() : "", held_dict->id(),
      held_dict->bytes().size(), train_s);
  if (o.train_all) {
    std::printf("dictionary B: trained on all %zu messages (same cut): id %u, %zu bytes, %.2f s\n",
                all.size(), same_dict->id(), same_dict->bytes().size(), same_s);
  } else {
    std::printf("dictionary B: not trained (--train-all 0), same as A\n");
  }
  std::printf("compression level %d; zstd with dictionary A %.2f s vs %.2f s without\n\n", o.level,
              dict_s, plain_s);
  std::printf(
      "| set                    |  msgs |   raw bytes |     gzip -6 |    zstd -%d | zstd -%d + "
      "dict A  vs plain | zstd -%d + dict B  vs plain |\n",
      o.level, o.level, o.level);
  std::printf("|---|--:|--:|--:|--:|--:|--:|\n");
  Row("held out (not in A)", held_sizes, true);
  Row("training set of A", train_sizes, true);
  Row("all", all_sizes, true);
  std::printf("\nall vs raw: gzip -6 %s, zstd -%d %s, zstd -%d + dict A %s\n",
              Pct(all_sizes.gzip, all_sizes.raw).c_str(), o.level,
              Pct(all_sizes.plain, all_sizes.raw).c_str(), o.level,
              Pct(all_sizes.held_dict, all_sizes.raw).c_str());
  return 0;
}
