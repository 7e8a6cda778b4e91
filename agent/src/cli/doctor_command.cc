// popvault doctor: checks the ledger against the stores and rebuilds it from
// the stores' records (doctor/doctor.h); --dry-run only shows what it would
// write. Never removes anything from a store, never contacts a server.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "doctor/doctor.h"

namespace popvault {
namespace {

// The findings in the order they are printed, with their human names.
std::vector<std::pair<const char*, const DoctorFinding*>> Findings(const DoctorReport& r) {
  return {{"undecodable", &r.undecodable},
          {"missing_copies", &r.missing_copies},
          {"unknown_records", &r.unknown_records},
          {"newer_records", &r.newer_records},
          {"unknown_stores", &r.unknown_stores},
          {"data_loss", &r.data_loss},
          {"unfinished_purges", &r.unfinished_purges},
          {"no_copy", &r.no_copy},
          {"unrepaired", &r.unrepaired}};
}

const char* Title(const std::string& key) {
  if (key == "undecodable") return "ledger entries that do not decode";
  if (key == "missing_copies") return "entries whose copy in a store is missing or damaged";
  if (key == "unknown_records") return "records the ledger does not know";
  if (key == "newer_records") return "records of a newer generation than the ledger's";
  if (key == "unknown_stores") return "entries listing a store the account does not have";
  if (key == "data_loss") return "DATA LOSS: gone from the server, no intact copy in any store";
  if (key == "unfinished_purges") {
    return "purged from the stores, not yet in the ledger (run popvault purge to finish)";
  }
  if (key == "no_copy") return "records whose message no store holds intact";
  return "undecodable entries left unrepaired";
}

// "uidl X generation N: stored in local, tree (id 0123...)".
std::string DescribeWrite(const LedgerEntry& e) {
  std::string text = "uidl " + EncodeUidl(e.record.uidl) + " generation " +
                     std::to_string(e.record.generation) + ": " + MessageStateName(e.state);
  if (!e.stores.empty()) {
    text += " in ";
    for (size_t i = 0; i < e.stores.size(); ++i) text += (i ? ", " : "") + e.stores[i];
  }
  if (!e.record.sha256.empty()) text += " (id " + e.record.sha256.substr(0, 16) + ")";
  return text;
}

void PrintText(const DoctorReport& r, const Status& s, bool dry_run) {
  std::cout << r.account << ": " << r.entries << " ledger entries, " << r.records
            << " store records\n";
  for (const auto& [key, finding] : Findings(r)) {
    if (finding->count == 0) continue;
    std::cout << "  " << Title(key) << ": " << finding->count << "\n";
    for (const std::string& example : finding->examples) std::cout << "    " << example << "\n";
    if (finding->count > finding->examples.size()) std::cout << "    ...\n";
  }
  for (const LedgerEntry& e : r.writes) {
    std::cout << "  " << (dry_run ? "would write " : "wrote ") << DescribeWrite(e) << "\n";
  }
  std::cout << r.account << ": " << r.writes.size() << " ledger entr(ies) "
            << (dry_run ? "would be written" : "written") << ", "
            << (s.ok() ? "consistent" : "NOT consistent") << "\n";
}

void PrintJson(const DoctorReport& r, const Status& s, bool dry_run) {
  Poco::JSON::Object o;
  o.set("account", r.account);
  o.set("dry_run", dry_run);
  o.set("entries", r.entries);
  o.set("records", r.records);
  Poco::JSON::Object findings;
  for (const auto& [key, finding] : Findings(r)) {
    Poco::JSON::Object f;
    f.set("count", finding->count);
    Poco::JSON::Array examples;
    for (const std::string& example : finding->examples) examples.add(ToValidUtf8(example));
    f.set("examples", examples);
    findings.set(key, f);
  }
  o.set("findings", findings);
  Poco::JSON::Array writes;
  for (const LedgerEntry& e : r.writes) {
    Poco::JSON::Object w;
    w.set("uidl", EncodeUidl(e.record.uidl));
    w.set("generation", e.record.generation);
    w.set("state", std::string(MessageStateName(e.state)));
    Poco::JSON::Array stores;
    for (const std::string& store : e.stores) stores.add(store);
    w.set("stores", stores);
    w.set("sha256", e.record.sha256);
    writes.add(w);
  }
  o.set("writes", writes);
  o.set("consistent", s.ok());
  if (!s.ok()) o.set("error", ToValidUtf8(s.ToString()));
  o.stringify(std::cout);
  std::cout << "\n";
}

Status DoctorOne(Context& ctx, Ledger& ledger, const AccountConfig& account, const Args& args,
                 DoctorReport* report) {
  DoctorOptions options;
  options.account = account.name;
  options.dry_run = args.dry_run;
  options.now = std::time(nullptr);
  if (!account.legal_hold && account.archive_retention_days > 0) {
    options.purge_before = options.now - int64_t{account.archive_retention_days} * 86400;
  }
  for (const std::string& name : account.stores) {
    Archive* archive = nullptr;
    POPVAULT_RETURN_IF_ERROR(ctx.GetArchive(name, &archive));
    options.archives.push_back(archive);
  }
  return DoctorAccount(options, ledger, report);
}

}  // namespace

int Doctor(Context& ctx, const Args& args) {
  std::vector<const AccountConfig*> accounts;
  if (!SelectCommandAccounts(ctx, args, &accounts)) return 2;
  Ledger* ledger = nullptr;
  Status s = ctx.GetLedger(&ledger);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString()
              << (args.dry_run ? "\n"
                               : "\npopvault: doctor writes the ledger, so no other popvault may "
                                 "hold it (is `popvault run` running? stop it first; "
                                 "doctor --dry-run only reads)\n");
    return 1;
  }
  int failures = 0;
  for (const AccountConfig* account : accounts) {
    DoctorReport report;
    report.account = account->name;
    s = DoctorOne(ctx, *ledger, *account, args, &report);
    args.json ? PrintJson(report, s, args.dry_run) : PrintText(report, s, args.dry_run);
    if (!s.ok()) {
      std::cerr << "popvault: " << s.ToString() << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace popvault
