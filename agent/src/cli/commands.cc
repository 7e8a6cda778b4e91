#include "cli/commands.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <cstdio>
#include <functional>
#include <future>
#include <iostream>
#include <set>

#include "common/async.h"
#include "retention/audit_log.h"
#include "sync/sync_engine.h"

namespace popvault {

namespace {

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

// Archived messages (kStored or kDeleted) of the selected accounts.
Status CollectArchived(Context& ctx, const std::string& account,
                       std::vector<LedgerEntry>* entries) {
  std::vector<const AccountConfig*> accounts;
  POPVAULT_RETURN_IF_ERROR(ctx.SelectAccounts(account, &accounts));
  Ledger* ledger = nullptr;
  POPVAULT_RETURN_IF_ERROR(ctx.GetLedger(&ledger));
  for (const AccountConfig* a : accounts) {
    POPVAULT_RETURN_IF_ERROR(ledger->ForEach(a->name, [&](const LedgerEntry& e) {
      if (e.state == MessageState::kStored || e.state == MessageState::kDeleted) {
        entries->push_back(e);
      }
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

}  // namespace

// Pop3Session::Open on a thread of its own, started at construction; the
// session is handed over once, through Taker (SyncOptions::connect).
class EarlySession {
 public:
  explicit EarlySession(const Pop3Options& options)
      : opened_(Async([this, options] { return Pop3Session::Open(options, &session_); })) {}

  std::function<Status(const Pop3Options&, std::unique_ptr<Pop3Session>*)> Taker() {
    return [this](const Pop3Options&, std::unique_ptr<Pop3Session>* session) {
      Status s = opened_.get();
      *session = std::move(session_);
      return s;
    };
  }

 private:
  std::unique_ptr<Pop3Session> session_;  // before opened_: its thread writes it
  // Destroyed first; an untaken session's thread is waited for (std::async),
  // then the session is dropped without QUIT.
  std::future<Status> opened_;
};

int Sync(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  if (!SelectCommandAccounts(ctx, args, &accounts)) return 2;
  Ledger* ledger = nullptr;
  std::unique_ptr<AuditLog> audit_log;
  Status s = ctx.GetLedger(&ledger);  // first: if `popvault run` holds it, stop before any login
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  // The first account's connection and login (round trips to the server)
  // go on while its stores open (local files).
  EarlySession early(accounts.front()->pop3);
  s = AuditLog::Open(ctx.config().audit_log, &audit_log);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  SyncOptions options;
  options.spool_dir = ctx.SpoolDir();
  options.audit_log = audit_log.get();
  int failures = 0;
  for (const AccountConfig* account : accounts) {
    options.connect = nullptr;
    if (account == accounts.front()) options.connect = early.Taker();
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
    } else if (report.too_large > 0) {
      // Not archived is a failure of an archiver, even if the pass went on.
      std::cerr << "popvault: account '" << account->name << "': " << report.too_large
                << " message(s) over max_message_size were not archived and stay on the server\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
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

int CheckConfig(const Args& args) {
  Config config;
  Status s = LoadConfig(args.config_path, &config);
  PluginLoader loader(config.plugin_dir.empty() ? DefaultPluginDir() : config.plugin_dir);
  // Each store's plugin options, so the rendering can mask the secret ones.
  std::map<std::string, std::vector<PluginOption>> plugin_options;
  for (size_t i = 0; s.ok() && i < config.stores.size(); ++i) {
    const StoreConfig& store = config.stores[i];
    StoragePlugin* plugin = nullptr;
    s = loader.CheckStore(config, store);
    if (s.ok()) s = loader.Load(store.plugin, &plugin);
    if (s.ok()) plugin_options[store.name] = plugin->Options();
  }
  for (const std::string& w : config.warnings) std::cerr << "popvault: warning: " << w << "\n";
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n";
    return 1;
  }
  std::cout << RenderEffectiveConfig(config, plugin_options);
  std::cout << "; OK: " << config.accounts.size() << " account(s), " << config.stores.size()
            << " store(s)\n";
  return 0;
}

}  // namespace popvault
