#include "ledger/ledger.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "archive/record_json.h"
#include "rocksdb_common.h"

namespace popvault {
namespace {

// Keys are account + '\0' + exact UIDL bytes. Account names never contain
// '\0', so the first '\0' splits a key, and the prefix "a\0" cannot match the
// entries of account "ab".
std::string EntryKey(const std::string& account, const std::string& uidl) {
  std::string key;
  key.reserve(account.size() + 1 + uidl.size());
  key.append(account).push_back('\0');
  key.append(uidl);
  return key;
}

std::string Describe(const std::string& account, const std::string& uidl) {
  return "ledger entry of account " + account + " UIDL " + EncodeUidl(uidl);
}

// A private temporary directory, removed with this object: where a reader
// (OpenReader) keeps the few files of its own that RocksDB requires.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "popvault-reader-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }  // empty if it could not be made

 private:
  std::string path_;
};

// Opens the existing database in `path` to read it while another process
// may hold it open for writing (RocksDB's secondary mode: no lock taken). The
// reader sees what was durable when it opened; every write fails with
// NotSupported. *scratch must outlive *db. Fine for the ledger, which has no
// blob files: RocksDB 7.8's secondary mode crashes at random reading those,
// so the RocksDB store cannot be read this way.
rocksdb::Status OpenReader(rocksdb::Options options, const std::string& path,
                           std::unique_ptr<ScratchDir>* scratch, std::unique_ptr<rocksdb::DB>* db) {
  *scratch = std::make_unique<ScratchDir>();
  if ((*scratch)->path().empty()) {
    return rocksdb::Status::IOError("cannot create a temporary directory for a reader");
  }
  options.create_if_missing = false;
  options.max_open_files = -1;  // secondary mode requires it
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::OpenAsSecondary(options, path, (*scratch)->path(), &raw);
  db->reset(raw);
  return s;
}

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  const std::string message = context + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(message);
  if (s.IsCorruption()) return Status::Corruption(message);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(message);
  if (s.IsNotSupported()) return Status::NotSupported(message);
  return Status::IOError(message);
}

bool ParseState(const std::string& name, MessageState* state) {
  for (MessageState s : {MessageState::kSeen, MessageState::kStored, MessageState::kDeleted,
                         MessageState::kPurged}) {
    if (name == MessageStateName(s)) {
      *state = s;
      return true;
    }
  }
  return false;
}

bool IsKnownState(MessageState state) {
  return state == MessageState::kSeen || state == MessageState::kStored ||
         state == MessageState::kDeleted || state == MessageState::kPurged;
}

// The record is written only once it exists (sha256 set, from kStored on);
// before that the key alone says whose entry it is.
bool HasRecord(const LedgerEntry& e) { return !e.record.sha256.empty(); }

Status CheckEntry(const LedgerEntry& e) {
  const std::string what = Describe(e.record.account, e.record.uidl);
  if (!IsValidAccountName(e.record.account)) return Status::InvalidArgument(what + ": bad account");
  if (!IsKnownState(e.state)) return Status::InvalidArgument(what + ": bad state");
  if (e.state == MessageState::kStored && !HasRecord(e)) {
    return Status::InvalidArgument(what + ": kStored without an archive record");
  }
  // Listing no stores is what makes sync fetch a purged message again if the
  // server lists it once more.
  if (e.state == MessageState::kPurged && !e.stores.empty()) {
    return Status::InvalidArgument(what + ": kPurged still lists stores");
  }
  for (const std::string& store : e.stores) {
    if (ToValidUtf8(store) != store) return Status::InvalidArgument(what + ": bad store name");
  }
  if (HasRecord(e)) {
    // Refuse what could not be read back (e.g. a malformed sha256).
    ArchiveRecord check;
    const Status s = RecordFromJsonObject(*RecordToJsonObject(e.record), &check);
    if (!s.ok()) return Status::InvalidArgument(what + ": " + s.message());
  }
  return Status::OK();
}

// Ledger values are binary (kBinaryV1, below): decoding one is a few
// hundred nanoseconds, where parsing JSON took most of a poll's time. Values
// written as JSON objects by earlier versions start with '{' and are still
// read (ParseEntryValue); a rewrite stores them in the binary form.
//
//   0x02, state (1 byte), first_seen, deleted_at, oversize, listed_octets
//   (plus one; 0: not known), dele_sent_at, generation (varints; times as two's complement), store
//   count + stores, account, uidl, then 0 or 1: with 1, the record's sha256,
//   size, stored_size, archived_at, message_id, date, from, subject. Strings
//   are a varint length and the bytes. 0x01 values (earlier versions) lack
//   listed_octets, dele_sent_at and generation (all 0).
constexpr char kBinaryV1 = '\x01';
constexpr char kBinaryV2 = '\x02';
bool IsBinary(std::string_view value) {
  return !value.empty() && (value[0] == kBinaryV1 || value[0] == kBinaryV2);
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string_view text, std::string* out) {
  PutVarint(text.size(), out);
  out->append(text);
}

std::string EncodeEntry(const LedgerEntry& e) {
  std::string out(1, kBinaryV2);
  out.push_back(static_cast<char>(e.state));
  PutVarint(static_cast<uint64_t>(e.first_seen), &out);
  PutVarint(static_cast<uint64_t>(e.deleted_at), &out);
  PutVarint(e.oversize, &out);
  PutVarint(e.listed_octets ? *e.listed_octets + 1 : 0, &out);
  PutVarint(static_cast<uint64_t>(e.dele_sent_at), &out);
  PutVarint(e.record.generation, &out);
  PutVarint(e.stores.size(), &out);
  for (const std::string& store : e.stores) PutString(store, &out);
  PutString(e.record.account, &out);
  PutString(e.record.uidl, &out);
  out.push_back(HasRecord(e) ? 1 : 0);
  if (HasRecord(e)) {
    const ArchiveRecord& r = e.record;
    PutString(r.sha256, &out);
    PutVarint(r.size, &out);
    PutVarint(r.stored_size, &out);
    PutVarint(static_cast<uint64_t>(r.archived_at), &out);
    // As the JSON record would hold them: valid UTF-8.
    for (const std::string* text : {&r.message_id, &r.date, &r.from, &r.subject}) {
      PutString(ToValidUtf8(*text), &out);
    }
  }
  return out;
}

// Reads kBinaryV1 fields; any overrun or malformed varint makes ok() false.
class BinaryReader {
 public:
  explicit BinaryReader(std::string_view data) : data_(data) {}
  char version() const { return data_.empty() ? 0 : data_[0]; }
  bool ok() const { return ok_; }
  bool done() const { return at_ == data_.size(); }

  uint8_t Byte() {
    if (at_ >= data_.size()) return Bad(), 0;
    return static_cast<uint8_t>(data_[at_++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = Byte();
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Bad(), 0;
  }
  // Into *out, reusing its buffer: a scan decodes many entries into one.
  void String(std::string* out) {
    const uint64_t n = Varint();
    if (n > data_.size() - at_) return Bad(), out->clear();
    out->assign(data_.data() + at_, n);
    at_ += n;
  }

  void Fail() { Bad(); }

 private:
  void Bad() {
    ok_ = false;
    at_ = data_.size();
  }
  std::string_view data_;
  size_t at_ = 1;  // after the version byte
  bool ok_ = true;
};

// Decodes the fields before the record: state, times, stores, account and
// uidl, overwriting them.
void ParseBinaryHead(BinaryReader& in, size_t value_size, LedgerEntry* e) {
  e->state = static_cast<MessageState>(in.Byte());
  e->first_seen = static_cast<int64_t>(in.Varint());
  e->deleted_at = static_cast<int64_t>(in.Varint());
  e->oversize = in.Varint();
  const bool v2 = in.version() == kBinaryV2;
  const uint64_t listed = v2 ? in.Varint() : 0;
  e->listed_octets = listed == 0 ? std::nullopt : std::optional<uint64_t>(listed - 1);
  e->dele_sent_at = v2 ? static_cast<int64_t>(in.Varint()) : 0;
  const uint64_t generation = v2 ? in.Varint() : 0;
  if (generation > UINT32_MAX) in.Fail();
  e->record.generation = static_cast<uint32_t>(generation);
  const uint64_t stores = in.Varint();
  if (stores > value_size) in.Fail();
  e->stores.resize(in.ok() ? stores : 0);
  for (std::string& store : e->stores) in.String(&store);
  in.String(&e->record.account);
  in.String(&e->record.uidl);
}

// Decodes into *e, overwriting every field (so one entry can be reused).
Status ParseBinaryEntry(std::string_view value, LedgerEntry* e) {
  BinaryReader in(value);
  ParseBinaryHead(in, value.size(), e);
  ArchiveRecord& r = e->record;
  if (in.Byte() == 1) {
    in.String(&r.sha256);
    r.size = in.Varint();
    r.stored_size = in.Varint();
    r.archived_at = static_cast<int64_t>(in.Varint());
    for (std::string* text : {&r.message_id, &r.date, &r.from, &r.subject}) in.String(text);
    if (in.ok() && !IsValidSha256Hex(r.sha256)) return Status::Corruption("bad sha256");
  } else {
    for (std::string* text : {&r.sha256, &r.message_id, &r.date, &r.from, &r.subject}) {
      text->clear();
    }
    r.size = r.stored_size = 0;
    r.archived_at = 0;
  }
  if (!in.ok() || !in.done()) return Status::Corruption("truncated or malformed entry");
  if (!IsKnownState(e->state)) return Status::Corruption("bad state");
  return Status::OK();
}

Status GetInt64(const Poco::JSON::Object& o, const char* field, int64_t* out) {
  const Poco::Dynamic::Var v = o.get(field);
  if (v.isEmpty() || v.isBoolean() || !v.isInteger()) {
    return Status::Corruption(std::string("\"") + field + "\" is missing or not an integer");
  }
  *out = v.convert<Poco::Int64>();
  return Status::OK();
}

Status ParseEntryValue(const std::string& json, LedgerEntry* e) {
  Poco::JSON::Parser parser;
  const Poco::Dynamic::Var root = parser.parse(json);
  if (root.type() != typeid(Poco::JSON::Object::Ptr)) return Status::Corruption("not an object");
  const auto o = root.extract<Poco::JSON::Object::Ptr>();
  const Poco::Dynamic::Var state = o->get("state");
  if (!state.isString() || !ParseState(state.extract<std::string>(), &e->state)) {
    return Status::Corruption("bad \"state\"");
  }
  POPVAULT_RETURN_IF_ERROR(GetInt64(*o, "first_seen", &e->first_seen));
  POPVAULT_RETURN_IF_ERROR(GetInt64(*o, "deleted_at", &e->deleted_at));
  const Poco::JSON::Array::Ptr stores = o->getArray("stores");
  if (!stores) return Status::Corruption("\"stores\" is missing or not an array");
  for (size_t i = 0; i < stores->size(); ++i) {
    const Poco::Dynamic::Var s = stores->get(static_cast<unsigned>(i));
    if (!s.isString()) return Status::Corruption("\"stores\" holds a non-string");
    e->stores.push_back(s.extract<std::string>());
  }
  if (o->has("oversize")) {
    int64_t oversize = 0;
    POPVAULT_RETURN_IF_ERROR(GetInt64(*o, "oversize", &oversize));
    if (oversize < 0) return Status::Corruption("\"oversize\" is negative");
    e->oversize = static_cast<uint64_t>(oversize);
  }
  if (o->has("record")) {
    const Poco::JSON::Object::Ptr record = o->getObject("record");
    if (!record) return Status::Corruption("\"record\" is not an object");
    const Status s = RecordFromJsonObject(*record, &e->record);
    if (!s.ok()) return Status::Corruption(s.message());
  }
  return Status::OK();
}

// Decodes the value stored under (account, uidl) into *entry, overwriting
// it; Corruption names the entry (and leaves *entry unspecified).
Status DecodeEntry(std::string_view account, std::string_view uidl, std::string_view value,
                   LedgerEntry* entry) {
  Status s;
  const bool binary = IsBinary(value);
  try {
    if (binary) {
      s = ParseBinaryEntry(value, entry);
    } else {
      *entry = LedgerEntry();
      s = ParseEntryValue(std::string(value), entry);
    }
  } catch (const Poco::Exception& ex) {
    s = Status::Corruption(ex.displayText());
  }
  const ArchiveRecord& r = entry->record;
  if (s.ok() && (binary || HasRecord(*entry)) && (r.account != account || r.uidl != uidl)) {
    s = Status::Corruption("holds the record of another message");
  }
  if (!s.ok()) {
    return Status::Corruption(Describe(std::string(account), std::string(uidl)) + ": " +
                              s.message());
  }
  entry->record.account = account;
  entry->record.uidl = uidl;
  return Status::OK();
}

}  // namespace

const char* MessageStateName(MessageState state) {
  switch (state) {
    case MessageState::kSeen:
      return "seen";
    case MessageState::kStored:
      return "stored";
    case MessageState::kDeleted:
      return "deleted";
    case MessageState::kPurged:
      return "purged";
  }
  return "unknown";
}

Status Ledger::Open(const std::string& dir, std::unique_ptr<Ledger>* ledger) {
  // Entries are a few hundred bytes: small memtables and caches do.
  const rocksdb::Options options = rocksdb_common::SmallFootprintOptions();
  rocksdb::DB* db = nullptr;
  POPVAULT_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(options, dir, &db), "opening ledger " + dir));
  ledger->reset(new Ledger(std::unique_ptr<rocksdb::DB>(db), nullptr));
  return Status::OK();
}

Status Ledger::OpenForReading(const std::string& dir, std::unique_ptr<Ledger>* ledger) {
  std::unique_ptr<ScratchDir> scratch;
  std::unique_ptr<rocksdb::DB> db;
  POPVAULT_RETURN_IF_ERROR(
      FromRocks(OpenReader(rocksdb_common::SmallFootprintOptions(), dir, &scratch, &db),
                "opening ledger " + dir + " for reading"));
  ledger->reset(new Ledger(std::move(db), std::move(scratch)));
  return Status::OK();
}

Ledger::Ledger(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<void> scratch)
    : scratch_(std::move(scratch)), db_(std::move(db)) {}

Ledger::~Ledger() { rocksdb_common::WaitForBackgroundWork(*db_, std::chrono::seconds(30)); }

Status Ledger::Get(const std::string& account, const std::string& uidl, LedgerEntry* entry) {
  if (!IsValidAccountName(account)) {
    return Status::InvalidArgument("ledger: bad account name \"" + account + "\"");
  }
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), EntryKey(account, uidl), &value);
  if (s.IsNotFound()) return Status::NotFound("no " + Describe(account, uidl));
  POPVAULT_RETURN_IF_ERROR(FromRocks(s, "reading " + Describe(account, uidl)));
  LedgerEntry decoded;
  POPVAULT_RETURN_IF_ERROR(DecodeEntry(account, uidl, value, &decoded));
  *entry = std::move(decoded);
  return Status::OK();
}

Status Ledger::Write(const std::vector<LedgerEntry>& entries, bool sync) {
  if (entries.empty()) return Status::OK();  // not even a WAL fsync
  rocksdb::WriteBatch batch;
  for (const LedgerEntry& e : entries) {
    POPVAULT_RETURN_IF_ERROR(CheckEntry(e));
    const std::string key = EntryKey(e.record.account, e.record.uidl);
    POPVAULT_RETURN_IF_ERROR(FromRocks(batch.Put(key, EncodeEntry(e)), "ledger write batch"));
  }
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, &batch), "writing the ledger");
}

Status Ledger::Sync() { return FromRocks(db_->SyncWAL(), "syncing the ledger"); }

namespace {

// Calls fn(account, uidl, value) for each entry of `account` (every account
// if empty) in key order, until fn sets *more to false or fails.
Status Scan(rocksdb::DB& db, const std::string& account,
            const std::function<Status(std::string_view, std::string_view, std::string_view,
                                       bool* more)>& fn) {
  if (!account.empty() && !IsValidAccountName(account)) {
    return Status::InvalidArgument("ledger: bad account name \"" + account + "\"");
  }
  const std::string start = account.empty() ? std::string() : EntryKey(account, "");
  const std::string limit = account + '\x01';  // just past every key of account
  const rocksdb::Slice limit_slice(limit);
  rocksdb::ReadOptions options;
  if (!account.empty()) options.iterate_upper_bound = &limit_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(options));
  for (it->Seek(start); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    const size_t sep = key.find('\0');
    if (sep == std::string_view::npos) {
      return Status::Corruption("ledger key without separator: " + EncodeUidl(std::string(key)));
    }
    bool more = true;
    POPVAULT_RETURN_IF_ERROR(
        fn(key.substr(0, sep), key.substr(sep + 1), it->value().ToStringView(), &more));
    if (!more) return Status::OK();
  }
  return FromRocks(it->status(), "iterating the ledger");
}

}  // namespace

Status Ledger::ForEach(const std::string& account,
                       const std::function<bool(const LedgerEntry&)>& fn) {
  LedgerEntry entry;  // reused: a scan of 50,000 entries allocates little
  return Scan(*db_, account,
              [&](std::string_view a, std::string_view uidl, std::string_view value, bool* more) {
                POPVAULT_RETURN_IF_ERROR(DecodeEntry(a, uidl, value, &entry));
                *more = fn(entry);
                return Status::OK();
              });
}

Status Ledger::ForEachSummary(const std::string& account,
                              const std::function<bool(const Summary&)>& fn,
                              const CorruptFn& corrupt) {
  LedgerEntry entry;
  return Scan(*db_, account,
              [&](std::string_view a, std::string_view uidl, std::string_view value, bool* more) {
                Status s;
                if (!IsBinary(value)) {
                  s = DecodeEntry(a, uidl, value, &entry);  // JSON: all of it
                } else {
                  BinaryReader in(value);
                  ParseBinaryHead(in, value.size(), &entry);
                  if (!in.ok() || !IsKnownState(entry.state) || entry.record.account != a ||
                      entry.record.uidl != uidl) {
                    s = Status::Corruption(Describe(std::string(a), std::string(uidl)) +
                                           ": truncated or malformed entry");
                  }
                }
                if (!s.ok() && corrupt) {
                  corrupt(uidl, s);
                  return Status::OK();
                }
                POPVAULT_RETURN_IF_ERROR(s);
                *more = fn(Summary{uidl, entry.state, entry.stores, entry.listed_octets,
                                   entry.dele_sent_at});
                return Status::OK();
              });
}

}  // namespace popvault
