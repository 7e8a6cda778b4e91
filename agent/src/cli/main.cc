// popvault: the command-line front end. Parses arguments, loads the config,
// opens the ledger and stores, and hands each account to the sync engine.
#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "config/config.h"
#include "ledger/ledger.h"
#include "plugin_loader/plugin_loader.h"
#include "sync/sync_engine.h"

namespace popvault {
namespace {

constexpr const char* kUsage =
    "usage: popvault COMMAND --config FILE [options]\n"
    "\n"
    "commands:\n"
    "  sync [--account NAME]           archive new mail of every (or one) account, once\n"
    "  list [--account NAME] [--json]  one row per archived message\n"
    "  cat ID                          write an archived message (sha256 or a unique\n"
    "                                  prefix of at least 8 hex digits) to stdout\n"
    "  export --output DIR [--account NAME]\n"
    "                                  write every archived message of every (or one)\n"
    "                                  account to DIR/ACCOUNT/SHA256.eml, verified\n"
    "  check-config                    validate the config file\n";

struct Args {
  std::string command;
  std::string config_path;
  std::string account;
  std::string id;
  std::string output;
  bool json = false;
};

Status ParseArgs(int argc, char** argv, Args* args) {
  if (argc < 2) return Status::InvalidArgument("missing command");
  args->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return Status::InvalidArgument(a + " needs a value");
      *out = argv[++i];
      return Status::OK();
    };
    if (a == "--config") {
      POPVAULT_RETURN_IF_ERROR(value(&args->config_path));
    } else if (a == "--account") {
      POPVAULT_RETURN_IF_ERROR(value(&args->account));
    } else if (a == "--output") {
      POPVAULT_RETURN_IF_ERROR(value(&args->output));
    } else if (a == "--json") {
      args->json = true;
    } else if (args->command == "cat" && args->id.empty() && a[0] != '-') {
      args->id = a;
    } else {
      return Status::InvalidArgument("unexpected argument '" + a + "'");
    }
  }
  if (args->config_path.empty()) return Status::InvalidArgument("--config FILE is required");
  if (args->command == "cat" && args->id.empty()) return Status::InvalidArgument("cat needs an ID");
  if (args->command == "export" && args->output.empty()) {
    return Status::InvalidArgument("export needs --output DIR");
  }
  return Status::OK();
}

void SetUpLogging(const std::string& level) {
  Poco::AutoPtr<Poco::PatternFormatter> format(
      new Poco::PatternFormatter("%Y-%m-%d %H:%M:%S %p %s: %t"));
  Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
  Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(format, console));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(level);
}

// What every command but check-config needs: the config, the ledger and the
// stores (opened on first use).
class Context {
 public:
  Status Open(const std::string& config_path) {
    POPVAULT_RETURN_IF_ERROR(LoadConfig(config_path, &config_));
    SetUpLogging(config_.log_level);
    std::error_code ec;
    std::filesystem::create_directories(SpoolDir(), ec);
    if (ec) return Status::IOError("cannot create " + SpoolDir() + ": " + ec.message());
    return Status::OK();
  }

  const Config& config() const { return config_; }

  Status GetLedger(Ledger** ledger) {
    if (!ledger_) POPVAULT_RETURN_IF_ERROR(Ledger::Open(config_.state_dir + "/ledger", &ledger_));
    *ledger = ledger_.get();
    return Status::OK();
  }
  std::string SpoolDir() const { return config_.state_dir + "/spool"; }

  Status GetArchive(const std::string& store_name, Archive** archive) {
    auto it = archives_.find(store_name);
    if (it == archives_.end()) {
      const StoreConfig* store = config_.FindStore(store_name);
      if (store == nullptr) return Status::NotFound("no store named '" + store_name + "'");
      std::unique_ptr<Storage> storage;
      POPVAULT_RETURN_IF_ERROR(OpenStorage(*store, &storage));
      auto archive =
          std::make_unique<Archive>(store->name, std::move(storage), store->compression_level);
      it = archives_.emplace(store_name, std::move(archive)).first;
    }
    *archive = it->second.get();
    return Status::OK();
  }

  // The accounts a command applies to: all, or the one --account names.
  Status SelectAccounts(const std::string& name, std::vector<const AccountConfig*>* out) const {
    for (const AccountConfig& a : config_.accounts) {
      if (name.empty() || a.name == name) out->push_back(&a);
    }
    if (out->empty()) return Status::NotFound("no account named '" + name + "' in " + config_.path);
    return Status::OK();
  }

 private:
  Config config_;
  std::unique_ptr<Ledger> ledger_;
  std::map<std::string, std::unique_ptr<Archive>> archives_;
};

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

int Sync(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  Status s = ctx.SelectAccounts(args.account, &accounts);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 2;
  }
  Ledger* ledger = nullptr;
  s = ctx.GetLedger(&ledger);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  SyncOptions options;
  options.spool_dir = ctx.SpoolDir();
  int failures = 0;
  for (const AccountConfig* account : accounts) {
    std::vector<Archive*> archives;
    for (const std::string& name : account->stores) {
      Archive* archive = nullptr;
      s = ctx.GetArchive(name, &archive);
      if (!s.ok()) break;
      archives.push_back(archive);
    }
    SyncReport report;
    if (s.ok()) s = SyncAccount(*account, *ledger, archives, options, &report);
    std::cout << account->name << ": " << report.listed << " on server, " << report.fetched
              << " fetched (" << HumanBytes(report.fetched_bytes) << "), " << report.deleted
              << " deleted from server\n";
    if (!s.ok()) {
      std::cerr << "popvault: " << s.ToString() << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

// Archived messages (kStored or kDeleted) of the selected accounts.
Status CollectArchived(Context& ctx, const std::string& account,
                       std::vector<LedgerEntry>* entries) {
  std::vector<const AccountConfig*> accounts;
  POPVAULT_RETURN_IF_ERROR(ctx.SelectAccounts(account, &accounts));
  Ledger* ledger = nullptr;
  POPVAULT_RETURN_IF_ERROR(ctx.GetLedger(&ledger));
  for (const AccountConfig* a : accounts) {
    POPVAULT_RETURN_IF_ERROR(ledger->ForEach(a->name, [&](const LedgerEntry& e) {
      if (e.state != MessageState::kSeen) entries->push_back(e);
      return true;
    }));
  }
  return Status::OK();
}

std::string MessageIdOf(const ArchiveRecord& r) { return r.sha256.substr(0, 16); }

const char* ServerStateOf(const LedgerEntry& e) {
  return e.state == MessageState::kDeleted ? "deleted" : "on_server";
}

void PrintJson(const std::vector<LedgerEntry>& entries) {
  Poco::JSON::Array rows;
  Poco::JSON::Parser parser;
  for (const LedgerEntry& e : entries) {
    Poco::JSON::Object::Ptr row =
        parser.parse(RecordToJson(e.record)).extract<Poco::JSON::Object::Ptr>();
    row->set("id", MessageIdOf(e.record));
    row->set("server", std::string(ServerStateOf(e)));
    rows.add(row);
    parser.reset();
  }
  rows.stringify(std::cout, 2);
  std::cout << "\n";
}

void PrintTable(const std::vector<LedgerEntry>& entries) {
  std::printf("%-16s  %-12s  %10s  %-20s  %-9s  %s\n", "ID", "ACCOUNT", "SIZE", "ARCHIVED",
              "SERVER", "SUBJECT");
  for (const LedgerEntry& e : entries) {
    const ArchiveRecord& r = e.record;
    std::printf("%-16s  %-12s  %10s  %-20s  %-9s  %.60s\n", MessageIdOf(r).c_str(),
                r.account.c_str(), HumanBytes(r.size).c_str(),
                FormatTimestamp(r.archived_at).c_str(), ServerStateOf(e), r.subject.c_str());
  }
  std::printf("%zu archived message(s)\n", entries.size());
}

int List(Context& ctx, const Args& args) {
  std::vector<LedgerEntry> entries;
  Status s = CollectArchived(ctx, args.account, &entries);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  args.json ? PrintJson(entries) : PrintTable(entries);
  return 0;
}

class StdoutSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    if (std::fwrite(data, 1, n, stdout) != n) return Status::IOError("cannot write to stdout");
    return Status::OK();
  }
};

// Resolves an ID (a sha256 prefix) to the one message it names, and a store
// that holds it. Looks in the stores themselves: the archive is the truth.
Status FindMessage(Context& ctx, const std::string& id, std::string* sha256, Archive** archive) {
  if (id.size() < 8 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::InvalidArgument("ID must be at least 8 lowercase hex digits, got '" + id + "'");
  }
  std::set<std::string> matches;
  for (const StoreConfig& store : ctx.config().stores) {
    Archive* candidate = nullptr;
    POPVAULT_RETURN_IF_ERROR(ctx.GetArchive(store.name, &candidate));
    POPVAULT_RETURN_IF_ERROR(candidate->FindMessages(id, [&](const std::string& sha) {
      if (matches.insert(sha).second && matches.size() == 1) *archive = candidate;
      return true;
    }));
  }
  if (matches.empty()) return Status::NotFound("no archived message with ID " + id);
  if (matches.size() > 1) {
    return Status::InvalidArgument("ID " + id + " is ambiguous; give more digits");
  }
  *sha256 = *matches.begin();
  return Status::OK();
}

int Cat(Context& ctx, const Args& args) {
  std::string sha256;
  Archive* archive = nullptr;
  Status s = FindMessage(ctx, args.id, &sha256, &archive);
  if (s.ok()) {
    StdoutSink out;
    s = archive->ReadMessage(sha256, out);
  }
  if (std::fflush(stdout) != 0 && s.ok()) s = Status::IOError("cannot write to stdout");
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

// Writes a file atomically: a temporary name, then rename, so an interrupted
// export never leaves a partial .eml behind.
class FileSink : public ByteSink {
 public:
  explicit FileSink(const std::string& path) : path_(path), tmp_(path + ".tmp") {
    file_ = std::fopen(tmp_.c_str(), "wb");
  }
  ~FileSink() override {
    if (file_ != nullptr) std::fclose(file_);
    std::remove(tmp_.c_str());
  }
  Status Append(const char* data, size_t n) override {
    if (file_ == nullptr || std::fwrite(data, 1, n, file_) != n) {
      return Status::IOError("cannot write " + tmp_);
    }
    return Status::OK();
  }
  Status Commit() {
    bool ok = file_ != nullptr && std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Status::IOError("cannot write " + path_);
    }
    return Status::OK();
  }

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
};

// Exports one message from the first of `archives` that has an intact copy.
Status ExportMessage(const std::vector<Archive*>& archives, const std::string& sha256,
                     const std::string& path) {
  Status s = Status::NotFound("message " + sha256 + " is in none of the account's stores");
  for (Archive* archive : archives) {
    FileSink file(path);
    s = archive->ReadMessage(sha256, file);
    if (s.ok()) return file.Commit();
  }
  return s;
}

Status ExportAccount(Context& ctx, const AccountConfig& account, const std::string& dir,
                     uint64_t* exported, uint64_t* failed) {
  std::vector<Archive*> archives;
  for (const std::string& name : account.stores) {
    Archive* archive = nullptr;
    POPVAULT_RETURN_IF_ERROR(ctx.GetArchive(name, &archive));
    archives.push_back(archive);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  Status list_status = archives.front()->ListRecords(account.name, [&](const ArchiveRecord& r) {
    std::string path = dir + "/" + r.sha256 + ".eml";
    if (std::filesystem::exists(path)) return true;  // same content under another UIDL
    Status s = ExportMessage(archives, r.sha256, path);
    if (!s.ok()) {
      std::cerr << "popvault: account '" << account.name << "': " << s.ToString() << "\n";
      ++*failed;
    } else if (++*exported % 1000 == 0) {
      std::cerr << "popvault: exported " << *exported << " messages\n";
    }
    return true;
  });
  return list_status.WithContext("account '" + account.name + "'");
}

int Export(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  Status s = ctx.SelectAccounts(args.account, &accounts);
  uint64_t exported = 0, failed = 0;
  for (size_t i = 0; s.ok() && i < accounts.size(); ++i) {
    s = ExportAccount(ctx, *accounts[i], args.output + "/" + accounts[i]->name, &exported, &failed);
  }
  std::cout << exported << " message(s) exported to " << args.output << ", " << failed
            << " failed\n";
  if (!s.ok()) std::cerr << "popvault: " << s.ToString() << "\n";
  return s.ok() && failed == 0 ? 0 : 1;
}

int CheckConfig(const Args& args) {
  Config config;
  Status s = LoadConfig(args.config_path, &config);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n";
    return 1;
  }
  std::cout << config.path << ": OK (" << config.accounts.size() << " account(s), "
            << config.stores.size() << " store(s))\n";
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  Status s = ParseArgs(argc, argv, &args);
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n" << kUsage;
    return 2;
  }
  if (args.command == "check-config") return CheckConfig(args);
  static const std::set<std::string> kCommands = {"sync", "list", "cat", "export"};
  if (!kCommands.count(args.command)) {
    std::cerr << "popvault: unknown command '" << args.command << "'\n" << kUsage;
    return 2;
  }
  Context ctx;
  s = ctx.Open(args.config_path);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  if (args.command == "sync") return Sync(ctx, args);
  if (args.command == "list") return List(ctx, args);
  if (args.command == "export") return Export(ctx, args);
  return Cat(ctx, args);
}

}  // namespace
}  // namespace popvault

int main(int argc, char** argv) { return popvault::Main(argc, argv); }
