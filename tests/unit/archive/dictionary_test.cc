// Trained zstd dictionaries: training, the dicts/ objects, reading frames that
// name a dictionary, and the failures (missing, damaged, colliding IDs).
#include "archive/dictionary.h"

#include <zstd.h>

#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "archive/archive.h"
#include "archive/message_writer.h"
#include "rocksdb_storage.h"
#include "test_support.h"

namespace popvault {
namespace {

using testing::ReadAll;
using testing::StringSink;
using testing::StringSource;
using testing::TempDir;

// Lets several Archives (each owning its Storage) share one store, as a
// restarted agent would, and counts Puts.
class SharedStorage : public testing::ForwardingStorage {
 public:
  SharedStorage(Storage* inner, int* puts) : ForwardingStorage(inner), puts_(puts) {}
  Status Put(const std::string& key, ByteSource& src) override {
    if (puts_) ++*puts_;
    return ForwardingStorage::Put(key, src);
  }

 private:
  int* puts_;
};

// Delivers every object one byte per Append (frame headers split anywhere).
class ByteByByteStorage : public SharedStorage {
 public:
  using SharedStorage::SharedStorage;
  Status Get(const std::string& key, ByteSink& sink) override {
    struct Splitter : ByteSink {
      ByteSink* out;
      Status Append(const char* data, size_t n) override {
        for (size_t i = 0; i < n; ++i) POPVAULT_RETURN_IF_ERROR(out->Append(data + i, 1));
        return Status::OK();
      }
    } splitter;
    splitter.out = &sink;
    return SharedStorage::Get(key, splitter);
  }
};

struct Store {
  TempDir dir;
  std::unique_ptr<Storage> raw;
  int puts = 0;

  Store() { REQUIRE(OpenRocksDbStorage(dir.Sub("store"), &raw).ok()); }
  // A fresh Archive over this store: nothing cached, no active dictionary.
  std::unique_ptr<Archive> Open(const std::string& name = "main") {
    return std::make_unique<Archive>(name, std::make_unique<SharedStorage>(raw.get(), &puts), 3);
  }
  std::vector<std::string> Keys(const std::string& prefix) {
    std::vector<std::string> keys;
    REQUIRE(raw->List(prefix,
                      [&](const std::string& k) {
                        keys.push_back(k);
                        return true;
                      })
                .ok());
    return keys;
  }
  std::string Get(const std::string& key) {
    StringSink sink;
    REQUIRE(raw->Get(key, sink).ok());
    return sink.data_;
  }
  void Put(const std::string& key, const std::string& bytes) {
    StringSource src(bytes);
    REQUIRE(raw->Put(key, src).ok());
  }
};

// Mail that looks like one mailbox's: shared header structure and vocabulary.
std::string Mail(int i, uint64_t seed = 1) {
  static const char* kWords[] = {"invoice",  "meeting", "project", "report", "update", "weekly",
                                 "review",   "budget",  "release", "status", "team",   "plan",
                                 "deadline", "agenda",  "notes",   "draft",  "final",  "q3"};
  std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(i));
  auto word = [&] { return std::string(kWords[rng() % (sizeof kWords / sizeof *kWords)]); };
  std::string m;
  m += "Return-Path: <" + word() + "@example.com>\r\n";
  m += "Received: from mail" + std::to_string(rng() % 9) +
       ".example.com (mail.example.com [192.0.2." + std::to_string(rng() % 250) +
       "])\r\n\tby mx.example.org (Postfix) with ESMTPS id " + std::to_string(rng()) +
       "\r\n\tfor <alice@example.org>; Tue, 1 Oct 2024 10:" + std::to_string(10 + rng() % 50) +
       ":00 +0200 (CEST)\r\n";
  m += "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=mail;\r\n";
  m += "From: " + word() + " <" + word() + "@example.com>\r\n";
  m += "To: Alice <alice@example.org>\r\n";
  m += "Subject: " + word() + " " + word() + " " + std::to_string(i) + "\r\n";
  m += "Date: Tue, 1 Oct 2024 10:00:" + std::to_string(10 + i % 50) + " +0200\r\n";
  m += "Message-ID: <" + std::to_string(rng()) + "@example.com>\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n";
  m += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
  m += "Hello Alice,\r\n\r\n";
  for (int w = 0; w < 40 + static_cast<int>(rng() % 80); ++w) m += word() + (w % 12 ? " " : "\r\n");
  m += "\r\n\r\nBest regards,\r\n" + word() + "\r\n-- \r\nExample Corp, 1 Example Road\r\n";
  return m;
}

std::vector<std::string> Samples(int n, uint64_t seed = 1) {
  std::vector<std::string> samples;
  for (int i = 0; i < n; ++i) samples.push_back(Mail(i, seed));
  return samples;
}

DictionaryTrainingOptions SmallDictionary() {
  DictionaryTrainingOptions o;
  o.max_dictionary_bytes = 16 << 10;
  o.k = 200;  // fixed parameters: fast and deterministic
  o.d = 8;
  return o;
}

std::string TrainedBytes(uint64_t seed = 1) {
  std::string dict;
  REQUIRE(TrainDictionary(Samples(300, seed), SmallDictionary(), &dict).ok());
  return dict;
}

struct Frame {
  std::string sha256;
  std::string bytes;
};

Frame Compress(const std::string& message, const Codec& codec) {
  MessageWriter w(std::vector<Codec>{codec}, "/tmp");
  REQUIRE(w.Append(message.data(), message.size()).ok());
  REQUIRE(w.Finish().ok());
  Frame f{w.sha256_hex(), {}};
  REQUIRE(ReadAll(w.compressed(codec), &f.bytes).ok());
  return f;
}

// PutMessage straight from a MessageWriter, as the sync engine does.
Status Put(Archive& archive, const std::string& message, const Codec& codec,
           bool* reused = nullptr) {
  MessageWriter w(std::vector<Codec>{codec}, "/tmp");
  REQUIRE(w.Append(message.data(), message.size()).ok());
  REQUIRE(w.Finish().ok());
  uint64_t stored = 0;
  return archive.PutMessage(w.sha256_hex(), w.compressed(codec), &stored, reused);
}

std::string Sha(const std::string& message) { return Compress(message, Codec{1, nullptr}).sha256; }

TEST_CASE("Dictionary keys, IDs and retagging") {
  const std::string sha(64, 'a');
  CHECK(DictionaryKey(123456, sha) == "dicts/123456-" + sha + ".zdict");
  uint32_t id = 0;
  std::string parsed;
  REQUIRE(ParseDictionaryKey(DictionaryKey(4294967295u, sha), &id, &parsed));
  CHECK(id == 4294967295u);
  CHECK(parsed == sha);
  for (const char* bad :
       {"dicts/0-aaaa.zdict", "dicts/active.json", "dicts/012-" /*...*/, "messages/ab/x.zst",
        "dicts/4294967296-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.zdict",
        "dicts/12-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.zdict",
        "dicts/-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.zdict"}) {
    INFO(bad);
    CHECK_FALSE(ParseDictionaryKey(bad, &id, &parsed));
  }
  for (unsigned i = 0; i < 40; ++i) {
    const uint32_t alt = AlternativeDictionaryId(sha, i);
    CHECK(alt >= kMinUserDictionaryId);
    CHECK(alt <= kMaxUserDictionaryId);
  }
  CHECK(AlternativeDictionaryId(sha, 0) == AlternativeDictionaryId(sha, 0));

  const std::string dict = TrainedBytes();
  const uint32_t own = DictionaryIdOf(dict);
  CHECK(own >= kMinUserDictionaryId);
  CHECK(own <= kMaxUserDictionaryId);
  CHECK(DictionaryIdOf(WithDictionaryId(dict, 777777)) == 777777);
  CHECK(DictionaryIdOf("not a dictionary") == 0);
  std::shared_ptr<const ZstdDictionary> loaded;
  CHECK(ZstdDictionary::Load("raw content, no header", &loaded).code() ==
        Status::Code::kInvalidArgument);
  CHECK(ZstdDictionary::Load(WithDictionaryId(dict, 0), &loaded).code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("TrainDictionary: frames name the dictionary and are smaller") {
  const std::string bytes = TrainedBytes();
  CHECK(bytes.size() <= 16u << 10);
  std::shared_ptr<const ZstdDictionary> dict;
  REQUIRE(ZstdDictionary::Load(bytes, &dict).ok());
  uint64_t plain = 0, with = 0;
  for (int i = 1000; i < 1050; ++i) {  // not among the training samples
    const std::string m = Mail(i);
    const Frame p = Compress(m, Codec{3, nullptr});
    const Frame d = Compress(m, Codec{3, dict});
    CHECK(ZSTD_getDictID_fromFrame(p.bytes.data(), p.bytes.size()) == 0);
    CHECK(ZSTD_getDictID_fromFrame(d.bytes.data(), d.bytes.size()) == dict->id());
    plain += p.bytes.size();
    with += d.bytes.size();
    // What `zstd -d -D dicts/<id>-<sha>.zdict` does.
    std::string back(m.size(), '\0');
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    const size_t n = ZSTD_decompress_usingDict(dctx, back.data(), back.size(), d.bytes.data(),
                                               d.bytes.size(), bytes.data(), bytes.size());
    ZSTD_freeDCtx(dctx);
    REQUIRE(!ZSTD_isError(n));
    CHECK(back == m);
  }
  CHECK(with < plain * 7 / 10);
}

TEST_CASE("TrainDictionary can search its parameters") {
  DictionaryTrainingOptions o = SmallDictionary();
  o.k = 0;
  o.d = 0;
  std::string dict;
  REQUIRE(TrainDictionary(Samples(300), o, &dict).ok());
  CHECK(DictionaryIdOf(dict) >= kMinUserDictionaryId);
  CHECK(dict.size() <= o.max_dictionary_bytes);
}

TEST_CASE("TrainDictionary with too few samples fails and the store stays plain") {
  std::string dict = "left over";
  DictionaryTrainingOptions o = SmallDictionary();
  Status s = TrainDictionary(Samples(20), o, &dict);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("20 samples") && Catch::Contains("100"));
  CHECK(dict.empty());
  // Empty samples do not count.
  std::vector<std::string> empties(500);
  CHECK(TrainDictionary(empties, o, &dict).code() == Status::Code::kInvalidArgument);
  // Enough samples but far too little data.
  o.min_samples = 5;
  std::vector<std::string> tiny(10, "a");
  s = TrainDictionary(tiny, o, &dict);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("10 bytes of samples"));

  Store store;
  auto archive = store.Open();
  uint32_t id = 0;
  s = archive->TrainAndActivateDictionary(Samples(20), SmallDictionary(), &id);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("store main"));
  CHECK(store.Keys("dicts/").empty());
  CHECK(archive->codec().dictionary == nullptr);
  CHECK(archive->codec() == Codec{3, nullptr});
  REQUIRE(Put(*archive, Mail(1), archive->codec()).ok());
  CHECK(archive->VerifyMessage(Sha(Mail(1))).ok());
}

TEST_CASE("Archive round trip with and without a dictionary, and a restarted agent reads both") {
  Store store;
  auto archive = store.Open();
  REQUIRE(archive->UseActiveDictionary().ok());  // none yet: stays plain
  CHECK(archive->codec().dictionary == nullptr);

  // Plain objects from before dictionaries.
  for (int i = 0; i < 5; ++i) REQUIRE(Put(*archive, Mail(i), archive->codec()).ok());

  uint32_t id = 0;
  REQUIRE(archive->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
  CHECK(id >= kMinUserDictionaryId);
  const Codec codec = archive->codec();
  REQUIRE(codec.dictionary != nullptr);
  CHECK(codec.dictionary_id() == id);
  const std::vector<std::string> keys = store.Keys("dicts/");
  REQUIRE(keys.size() == 2);
  CHECK(keys[0] == codec.dictionary->key());
  CHECK(keys[1] == Archive::kActiveDictionaryKey);
  CHECK(store.Get(keys[0]) == codec.dictionary->bytes());

  for (int i = 100; i < 110; ++i) REQUIRE(Put(*archive, Mail(i), codec).ok());
  // Including a message whose whole frame is shorter than a frame header.
  REQUIRE(Put(*archive, "", codec).ok());
  REQUIRE(archive->Sync().ok());
  const std::string frame = store.Get(Archive::MessageKey(Sha(Mail(100))));
  CHECK(ZSTD_getDictID_fromFrame(frame.data(), frame.size()) == id);
  CHECK(store.Get(Archive::MessageKey(Sha(""))).size() < 18);

  auto check_all = [&](Archive& a) {
    for (int i : {0, 1, 2, 3, 4, 100, 105, 109}) {
      INFO("message " << i);
      CHECK(a.VerifyMessage(Sha(Mail(i))).ok());
      StringSink read;
      REQUIRE(a.ReadMessage(Sha(Mail(i)), read).ok());
      CHECK(read.data_ == Mail(i));
    }
    CHECK(a.VerifyMessage(Sha("")).ok());
  };
  check_all(*archive);

  // A restart: nothing cached. Reading loads the dictionary by the frame's ID.
  auto restarted = store.Open();
  CHECK(restarted->codec().dictionary == nullptr);  // off until asked for
  check_all(*restarted);
  REQUIRE(restarted->UseActiveDictionary().ok());
  CHECK(restarted->codec() == codec);
  uint32_t listed = 0;
  REQUIRE(restarted
              ->ListDictionaries([&](uint32_t i) {
                listed = i;
                return true;
              })
              .ok());
  CHECK(listed == id);
}

TEST_CASE("Dictionary frames read back when the store delivers a byte at a time") {
  Store store;
  uint32_t id = 0;
  REQUIRE(store.Open()->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
  Archive archive("main", std::make_unique<ByteByByteStorage>(store.raw.get(), nullptr), 3);
  REQUIRE(archive.UseActiveDictionary().ok());
  REQUIRE(archive.codec().dictionary_id() == id);
  for (const std::string& m : {Mail(1), std::string(), std::string("x")}) {
    REQUIRE(Put(archive, m, archive.codec()).ok());
    Archive fresh("main", std::make_unique<ByteByByteStorage>(store.raw.get(), nullptr), 3);
    StringSink read;
    REQUIRE(fresh.ReadMessage(Sha(m), read).ok());
    CHECK(read.data_ == m);
    std::vector<std::string> samples;
    REQUIRE(fresh.CollectSamples(1, 10, 5, &samples).ok());
    CHECK(!samples.empty());
  }
}

TEST_CASE("A message stored plain is not stored again with a dictionary") {
  Store store;
  auto archive = store.Open();
  REQUIRE(Put(*archive, Mail(7), archive->codec()).ok());
  uint32_t id = 0;
  REQUIRE(archive->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
  const int puts = store.puts;
  bool reused = false;
  REQUIRE(Put(*archive, Mail(7), archive->codec(), &reused).ok());
  CHECK(reused);
  CHECK(store.puts == puts);
  const std::string frame = store.Get(Archive::MessageKey(Sha(Mail(7))));
  CHECK(ZSTD_getDictID_fromFrame(frame.data(), frame.size()) == 0);
}

TEST_CASE("A missing dictionary is Corruption naming the dictionary and the message") {
  Store store;
  uint32_t id = 0;
  {
    auto archive = store.Open();
    REQUIRE(archive->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
    REQUIRE(Put(*archive, Mail(500), archive->codec()).ok());
    REQUIRE(Put(*archive, "", archive->codec()).ok());
  }
  for (const std::string& key : store.Keys("dicts/")) REQUIRE(store.raw->Remove(key).ok());

  auto archive = store.Open();
  for (const std::string& message : {Mail(500), std::string()}) {
    const std::string sha = Sha(message);
    const Status s = archive->VerifyMessage(sha);
    CHECK(s.code() == Status::Code::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("store main") && Catch::Contains(sha) &&
                                Catch::Contains("dictionary " + std::to_string(id)) &&
                                Catch::Contains("missing"));
    StringSink sink;
    CHECK(archive->ReadMessage(sha, sink).code() == Status::Code::kCorruption);
    CHECK(sink.data_.empty());
  }
  std::shared_ptr<const ZstdDictionary> dict;
  CHECK(archive->GetDictionary(id, &dict).code() == Status::Code::kNotFound);
  // No active dictionary object left either: plain compression.
  REQUIRE(archive->UseActiveDictionary().ok());
  CHECK(archive->codec().dictionary == nullptr);
}

TEST_CASE("A damaged dictionary is Corruption, and is never used to compress") {
  Store store;
  uint32_t id = 0;
  std::string key;
  {
    auto archive = store.Open();
    REQUIRE(archive->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
    key = archive->codec().dictionary->key();
    REQUIRE(Put(*archive, Mail(600), archive->codec()).ok());
  }
  std::string bytes = store.Get(key);
  SECTION("a flipped byte in the content") { bytes[bytes.size() - 100] ^= 0x20; }
  SECTION("truncated") { bytes.resize(bytes.size() / 2); }
  SECTION("another dictionary's bytes") { bytes = TrainedBytes(2); }
  store.Put(key, bytes);

  auto archive = store.Open();
  const Status s = archive->VerifyMessage(Sha(Mail(600)));
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains(Sha(Mail(600))) &&
                              Catch::Contains("dictionary " + std::to_string(id)) &&
                              Catch::Contains("damaged") && Catch::Contains(key));
  const Status active = archive->UseActiveDictionary();
  CHECK(active.code() == Status::Code::kCorruption);
  CHECK_THAT(active.message(), Catch::Contains("dictionary " + std::to_string(id)));
  CHECK(archive->codec().dictionary == nullptr);

  // Adding the dictionary again repairs the object; the message reads again.
  std::shared_ptr<const ZstdDictionary> original;
  {
    Store other;
    auto a = other.Open();
    uint32_t same = 0;
    REQUIRE(a->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &same).ok());
    REQUIRE(same == id);  // training is deterministic with fixed parameters
    original = a->codec().dictionary;
  }
  uint32_t again = 0;
  REQUIRE(archive->AddDictionary(original->bytes(), true, &again).ok());
  CHECK(again == id);
  CHECK(store.Get(key) == original->bytes());
  CHECK(store.Open()->VerifyMessage(Sha(Mail(600))).ok());
}

TEST_CASE("A damaged active.json leaves compression plain") {
  Store store;
  uint32_t id = 0;
  REQUIRE(store.Open()->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
  for (const std::string& bad : {std::string("{"), std::string("{\"dict_id\": 5}"),
                                 std::string("{\"dict_id\": 0, \"sha256\": \"x\"}")}) {
    INFO(bad);
    store.Put(Archive::kActiveDictionaryKey, bad);
    auto archive = store.Open();
    const Status s = archive->UseActiveDictionary();
    CHECK(s.code() == Status::Code::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("dicts/active.json"));
    CHECK(archive->codec().dictionary == nullptr);
  }
}

TEST_CASE("Dictionary ID collisions: the second dictionary gets another ID") {
  Store store;
  auto archive = store.Open();
  const std::string a = TrainedBytes(1);
  const std::string b = WithDictionaryId(TrainedBytes(2), DictionaryIdOf(a));
  REQUIRE(a != b);
  uint32_t id_a = 0, id_b = 0, id_a2 = 0;
  REQUIRE(archive->AddDictionary(a, /*activate=*/false, &id_a).ok());
  CHECK(id_a == DictionaryIdOf(a));
  CHECK(archive->codec().dictionary == nullptr);  // not activated
  const int puts = store.puts;
  REQUIRE(archive->AddDictionary(a, false, &id_a2).ok());  // already there: no write
  CHECK(id_a2 == id_a);
  CHECK(store.puts == puts);
  REQUIRE(archive->AddDictionary(b, /*activate=*/true, &id_b).ok());
  CHECK(id_b != id_a);
  CHECK(id_b >= kMinUserDictionaryId);
  CHECK(store.Keys("dicts/").size() == 3);  // two dictionaries and active.json
  CHECK(archive->codec().dictionary_id() == id_b);

  // Messages compressed with either read back through a fresh agent.
  std::shared_ptr<const ZstdDictionary> dict_a;
  REQUIRE(archive->GetDictionary(id_a, &dict_a).ok());
  REQUIRE(Put(*archive, Mail(1, 1), Codec{3, dict_a}).ok());
  REQUIRE(Put(*archive, Mail(1, 2), archive->codec()).ok());
  auto fresh = store.Open();
  CHECK(fresh->VerifyMessage(Sha(Mail(1, 1))).ok());
  CHECK(fresh->VerifyMessage(Sha(Mail(1, 2))).ok());

  // Not a dictionary at all.
  uint32_t id = 0;
  CHECK(archive->AddDictionary("nope", true, &id).code() == Status::Code::kInvalidArgument);
}

TEST_CASE("PutMessage refuses a frame whose dictionary the store does not hold") {
  Store first, second;
  auto a = first.Open("first");
  auto b = second.Open("second");
  uint32_t id = 0;
  REQUIRE(a->TrainAndActivateDictionary(Samples(300), SmallDictionary(), &id).ok());
  const int puts = second.puts;
  Status s = Put(*b, Mail(3), a->codec());
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("store second") &&
                              Catch::Contains("dictionary " + std::to_string(id)));
  CHECK(second.puts == puts);

  // Same ID in the second store, but another dictionary: still refused.
  uint32_t other = 0;
  REQUIRE(b->AddDictionary(WithDictionaryId(TrainedBytes(2), id), true, &other).ok());
  REQUIRE(other == id);
  s = Put(*b, Mail(3), a->codec());
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("another store's dictionary"));
  // A bare frame (not from a MessageWriter) is checked by its ID only.
  const Frame f = Compress(Mail(3), b->codec());
  StringSource src(f.bytes);
  uint64_t stored = 0;
  REQUIRE(b->PutMessage(f.sha256, src, &stored).ok());
  CHECK(b->VerifyMessage(f.sha256).ok());
}

TEST_CASE("MessageWriter: one frame per codec, plain and dictionary apart") {
  std::shared_ptr<const ZstdDictionary> d1, d2;
  REQUIRE(ZstdDictionary::Load(TrainedBytes(1), &d1).ok());
  REQUIRE(ZstdDictionary::Load(TrainedBytes(2), &d2).ok());
  const std::vector<Codec> codecs{{3, nullptr}, {3, d1}, {3, d1}, {3, d2}, {5, d1}};
  const std::string m = Mail(42);
  MessageWriter w(codecs, "/tmp");
  REQUIRE(w.Append(m.data(), m.size()).ok());
  REQUIRE(w.Finish().ok());
  std::string plain, one, two, five;
  REQUIRE(ReadAll(w.compressed(3), &plain).ok());
  REQUIRE(ReadAll(w.compressed(Codec{3, d1}), &one).ok());
  REQUIRE(ReadAll(w.compressed(Codec{3, d2}), &two).ok());
  REQUIRE(ReadAll(w.compressed(Codec{5, d1}), &five).ok());
  CHECK(ZSTD_getDictID_fromFrame(plain.data(), plain.size()) == 0);
  CHECK(ZSTD_getDictID_fromFrame(one.data(), one.size()) == d1->id());
  CHECK(ZSTD_getDictID_fromFrame(two.data(), two.size()) == d2->id());
  CHECK(ZSTD_getDictID_fromFrame(five.data(), five.size()) == d1->id());
  CHECK(one.size() < plain.size());
  std::string none;
  CHECK(!ReadAll(w.compressed(Codec{1, d1}), &none).ok());
  CHECK(dynamic_cast<CompressedSource&>(w.compressed(Codec{3, d2})).codec() == Codec{3, d2});
}

TEST_CASE("Pooled compression contexts forget the dictionary") {
  std::shared_ptr<const ZstdDictionary> dict;
  REQUIRE(ZstdDictionary::Load(TrainedBytes(1), &dict).ok());
  for (int i = 0; i < 20; ++i) (void)Compress(Mail(i), Codec{3, dict});
  for (int i = 0; i < 20; ++i) {
    const std::string m = Mail(i);
    const Frame f = Compress(m, Codec{3, nullptr});
    CHECK(ZSTD_getDictID_fromFrame(f.bytes.data(), f.bytes.size()) == 0);
    std::string back(m.size(), '\0');
    const size_t n = ZSTD_decompress(back.data(), back.size(), f.bytes.data(), f.bytes.size());
    REQUIRE(!ZSTD_isError(n));
    CHECK(back == m);
  }
}

TEST_CASE("Archive::CollectSamples reads the start of stored messages") {
  Store store;
  auto archive = store.Open();
  for (int i = 0; i < 30; ++i) REQUIRE(Put(*archive, Mail(i), archive->codec()).ok());
  store.Put("messages/x", "not a message key");  // skipped
  std::vector<std::string> samples;
  REQUIRE(archive->CollectSamples(31, 20, 100, &samples).ok());  // not enough messages yet
  CHECK(samples.empty());
  REQUIRE(archive->CollectSamples(30, 20, 100, &samples).ok());
  REQUIRE(samples.size() == 20);
  std::set<std::string> starts;
  for (int i = 0; i < 30; ++i) starts.insert(Mail(i).substr(0, 100));
  for (const std::string& s : samples) CHECK(starts.count(s) == 1);
  samples.clear();
  REQUIRE(archive->CollectSamples(0, 1000, 1 << 20, &samples).ok());
  CHECK(samples.size() == 30);
  CHECK(archive->CollectSamples(0, 10, 0, &samples).code() == Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace popvault
