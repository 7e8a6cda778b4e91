// The commands as a user runs them: which options each takes (a wrong one is
// a usage error, never ignored), export from every store of an account into
// a directory it cannot be tricked into writing outside of, and purge.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "archive/record.h"
#include "harness.h"

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

// A filesystem store named "tree" under the workspace.
constexpr const char* kTreeStore = "[store.tree]\nplugin = filesystem\npath = tree\n\n";

// One more [account.NAME] section reading fixture user `user`'s mailbox
// (password file "password", as Workspace writes it), into the tree store.
std::string ExtraAccount(const std::string& name, const std::string& user,
                         const std::string& extra) {
  const FixtureEnv& env = FixtureEnv::Get();
  return "\n[account." + name + "]\nhost = " + env["POP3_HOST"] + "\nport = " + env["POP3S_PORT"] +
         "\ntls = implicit\nca_file = " + env["CA_FILE"] + "\nuser = " + user +
         "\npassword_file = password\nstores = tree\n" + extra;
}

std::string MessageFile(const std::string& tree, const std::string& sha256) {
  return tree + "/messages/" + sha256.substr(0, 2) + "/" + sha256 + ".zst";
}

// Removes every record of `sha256` from a filesystem store's account tree.
void RemoveRecords(const std::string& tree, const std::string& account, const std::string& sha) {
  int removed = 0;
  for (const auto& e : fs::directory_iterator(tree + "/records/" + account)) {
    if (ReadFile(e.path()).find("\"" + sha + "\"") != std::string::npos) {
      fs::remove(e.path());
      ++removed;
    }
  }
  REQUIRE(removed > 0);
}

// The permission bits of `path` itself (not of what a symlink names); 0 if
// there is nothing there.
mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// Puts `count` small messages into fixture user `user`'s mailbox, each unique
// by `tag` (FillMailbox's quirk messages are the same for every seed).
void Deliver(const std::string& user, const std::string& tag, int count) {
  char tmpl[] = "/tmp/popvault-it-deliver-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string src = tmpl;
  for (int i = 0; i < count; ++i) {
    std::ofstream(src + "/" + std::to_string(i))
        << "From: cli_test <t@example.test>\r\n"
        << "Subject: " << tag << " " << i << "\r\n"
        << "Message-ID: <" << tag << "-" << i << "@example.test>\r\n\r\nbody\r\n";
  }
  Outcome fill = Run({POPVAULT_SOURCE_DIR "/tests/fixtures/dovecot.sh", "fill",
                      FixtureEnv::Get()["DOVECOT_DIR"], user, src});
  fs::remove_all(src);
  INFO(fill.err);
  REQUIRE(fill.exit_code == 0);
}

// ---- Options ----

TEST_CASE("sync --dry-run is a usage error and deletes nothing") {
  FillMailbox("cli1", 3, 121);
  const std::vector<ServerMessage> before = DumpMailbox("cli1");
  REQUIRE(before.size() >= 3);
  Workspace ws({.user = "cli1", .retention = "delete_after_archive"});

  Outcome o = ws.Popvault("sync", {"--dry-run"});
  INFO(o.out << o.err);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Contains("popvault: sync does not take --dry-run (to see what sync would "
                             "delete: popvault retention --dry-run)"));
  CHECK(ShaSet(DumpMailbox("cli1")) == ShaSet(before));
  CHECK_FALSE(fs::exists(ws.dir() + "/state/ledger"));  // sync did not even start
}

TEST_CASE("each command takes only its own options, each once, with a value") {
  Workspace ws({.user = "cli1"});
  const std::string out = ws.dir() + "/out";
  struct Case {
    std::string command;
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> refused = {
      {"list", {"--dry-run"}, "list does not take --dry-run"},
      {"list", {"--output", out}, "list does not take --output"},
      {"export", {"--output", out, "--json"}, "export does not take --json"},
      {"export", {"--output", out, "--dry-run"}, "export does not take --dry-run"},
      {"cat", {"0123456789abcdef", "--account", "cli1"}, "cat does not take --account"},
      {"check-config", {"--account", "cli1"}, "check-config does not take --account"},
      {"retention", {"--json", "--dry-run"}, "retention does not take --json"},
      {"purge", {"--output", out}, "purge does not take --output"},
      {"sync", {"--json"}, "sync does not take --json"},
      {"retention", {}, "retention needs --dry-run"},
      {"export", {}, "export needs --output DIR"},
      {"cat", {}, "cat needs an ID"},
      {"list", {"--account", "cli1", "--account", "cli1"}, "list: --account given twice"},
      {"purge", {"--dry-run", "--dry-run"}, "purge: --dry-run given twice"},
      {"list", {"--config", ws.config()}, "list: --config given twice"},
      {"list", {"--account", ""}, "list: --account needs a value, got ''"},
      {"export", {"--output", ""}, "export: --output needs a value, got ''"},
      {"list", {"--account"}, "list: --account needs a value"},
      {"export",
       {"--output", "--account", "cli1"},
       "export: --output needs a value, got '--account'"},
      {"cat",
       {"0123456789abcdef", "fedcba9876543210"},
       "cat takes one ID, got a second: 'fedcba9876543210'"},
      {"sync", {"cli1"}, "sync takes no argument, got 'cli1'"},
      {"purge", {"--force"}, "purge: unknown option '--force'"},
  };
  for (const Case& c : refused) {
    Outcome o = ws.Popvault(c.command, c.args);
    INFO(c.command << ": " << o.out << o.err);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.err, Contains("popvault: " + c.error));
    CHECK_THAT(o.err, Contains("usage: popvault"));
  }
  CHECK(Run({POPVAULT_BINARY, "frobnicate", "--config", ws.config()}).exit_code == 2);
  CHECK_FALSE(fs::exists(ws.dir() + "/state/ledger"));

  // What each command does take still works (nothing here needs the server).
  const std::vector<Case> accepted = {
      {"check-config", {}, ""},
      {"list", {"--json", "--account", "cli1"}, ""},
      {"purge", {"--account", "cli1", "--dry-run"}, ""},
      {"export", {"--account", "cli1", "--output", out}, ""},
  };
  for (const Case& c : accepted) {
    Outcome o = ws.Popvault(c.command, c.args);
    INFO(c.command << ": " << o.out << o.err);
    CHECK(o.exit_code == 0);
  }
}

// ---- Export ----

// One fixture mailbox archived into two stores, tree (filesystem) first, then
// damaged in ways export must see through, or at least name.
TEST_CASE(
    "export reads every store of the account, checks what is there and names what it could not "
    "export") {
  const std::vector<ServerMessage> server = DumpMailbox("generated");
  std::vector<ServerMessage> distinct;  // the mailbox has messages with the same content
  std::set<std::string> seen;
  for (const ServerMessage& m : server) {
    if (seen.insert(m.sha256).second) distinct.push_back(m);
  }
  REQUIRE(distinct.size() >= 5);
  Workspace::Account account{
      .user = "generated", .stores = "tree, local", .store_sections = kTreeStore};
  Workspace ws(account);
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  const std::string tree = ws.dir() + "/tree";

  // only_second: neither record nor object in tree (the first store).
  const ServerMessage only_second = distinct[0];
  fs::remove(MessageFile(tree, only_second.sha256));
  RemoveRecords(tree, "generated", only_second.sha256);
  // damaged_first: tree's copy is other bytes; local's is intact.
  const ServerMessage damaged_first = distinct[1];
  std::ofstream(MessageFile(tree, damaged_first.sha256), std::ios::trunc) << "not zstd";
  // lost: gone from tree, damaged in local: it cannot be exported.
  const ServerMessage lost = distinct[2];
  fs::remove(MessageFile(tree, lost.sha256));
  Outcome corrupt = Run({POPVAULT_CORRUPT_TOOL, ws.dir() + "/archive", lost.sha256});
  INFO(corrupt.err);
  REQUIRE(corrupt.exit_code == 0);

  const std::string out = ws.dir() + "/export";
  const std::string dir = out + "/generated";
  fs::create_directories(dir);
  // stale: an earlier export's file that is not (any longer) the message.
  const ServerMessage stale = distinct[3];
  std::ofstream(dir + "/" + stale.sha256 + ".eml") << "Subject: something else\r\n\r\n";
  // planted: symlinks where export might write its temporary file.
  const ServerMessage planted = distinct[4];
  const std::string victim = ws.dir() + "/victim";
  std::ofstream(victim) << "precious";
  fs::create_symlink(victim, dir + "/" + planted.sha256 + ".eml.tmp");
  fs::create_symlink(victim, dir + "/." + planted.sha256 + ".eml.tmp");

  const mode_t old_umask = umask(0);  // what export creates is private regardless
  Outcome exported = ws.Popvault("export", {"--output", out});
  umask(old_umask);
  INFO(exported.out << exported.err);
  CHECK(exported.exit_code == 1);

  for (const ServerMessage& m : server) {
    const std::string path = dir + "/" + m.sha256 + ".eml";
    INFO("message " << m.sha256);
    if (m.sha256 == lost.sha256) {
      CHECK_FALSE(fs::exists(path));
      continue;
    }
    CHECK(fs::is_regular_file(fs::symlink_status(path)));
    CHECK(Sha256Hex(ReadFile(path)) == m.sha256);
    CHECK(ModeOf(path) == 0600);
  }
  CHECK(ReadFile(victim) == "precious");
  CHECK_THAT(exported.err, Contains(stale.sha256 + ".eml"));
  CHECK_THAT(exported.err, Contains("rewritten"));
  std::string uidl;
  for (size_t i = 0; i + 1 < lost.uidl_hex.size(); i += 2) {
    uidl += static_cast<char>(std::stoi(lost.uidl_hex.substr(i, 2), nullptr, 16));
  }
  CHECK_THAT(exported.err, Contains("not exported: account 'generated' uidl " + EncodeUidl(uidl) +
                                    " sha256 " + lost.sha256));
  CHECK_THAT(exported.out, Contains("1 not exported"));

  // Directories export creates are 0700 whatever the umask.
  const std::string fresh = ws.dir() + "/fresh/export";
  umask(0);
  Outcome again = ws.Popvault("export", {"--output", fresh});
  umask(old_umask);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 1);
  CHECK(ModeOf(ws.dir() + "/fresh") == 0700);
  CHECK(ModeOf(fresh) == 0700);
  CHECK(ModeOf(fresh + "/generated") == 0700);
  CHECK(Sha256Hex(ReadFile(fresh + "/generated/" + only_second.sha256 + ".eml")) ==
        only_second.sha256);
}

// ---- Purge ----

// Environment additions that run popvault with its wall clock two days ahead
// (tests/integration/fake_clock.cc).
std::vector<std::string> TwoDaysLater() {
  // A sanitizer build's ASan runtime wants to be loaded first and would stop
  // a preloaded library; Spawn's additions come after the inherited
  // environment, which getenv reads first, so this goes into ours.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string options = std::string(asan == nullptr ? "" : asan) +
                              (asan == nullptr ? "" : ":") + "verify_asan_link_order=0";
  REQUIRE(setenv("ASAN_OPTIONS", options.c_str(), 1) == 0);
  return {"LD_PRELOAD=" POPVAULT_FAKE_CLOCK, "POPVAULT_FAKE_CLOCK_OFFSET=172800"};
}

// Three accounts over fixture user cli2's mailbox, each archiving (and
// deleting from the server) its own batch, into one filesystem store.
TEST_CASE("purge: legal hold is exit status 1, --dry-run removes nothing, --account limits it") {
  Workspace::Account account{.user = "cli2",
                             .retention = "delete_after_archive",
                             .extra = "archive_retention_days = 1\n",
                             .stores = "tree",
                             .store_sections = kTreeStore};
  account.extra += ExtraAccount("other", "cli2",
                                "retention = delete_after_archive\narchive_retention_days = 1\n");
  account.extra += ExtraAccount(
      "held", "cli2",
      "retention = delete_after_archive\narchive_retention_days = 1\nlegal_hold = true\n");
  Workspace ws(account);
  std::map<std::string, std::set<std::string>> batch;
  for (const char* name : {"cli2", "other", "held"}) {
    Deliver("cli2", name + std::to_string(getpid()), 3);
    batch[name] = ShaSet(DumpMailbox("cli2"));
    Outcome sync = ws.Popvault("sync", {"--account", name});
    INFO(name << ": " << sync.out << sync.err);
    REQUIRE(sync.exit_code == 0);
    REQUIRE(DumpMailbox("cli2").empty());
  }
  const std::string tree = ws.dir() + "/tree";
  std::set<std::string> all;
  for (const auto& [name, shas] : batch) all.insert(shas.begin(), shas.end());
  REQUIRE(all.size() == 9);
  REQUIRE(MessagesInTree(tree) == all);

  // Archived today: nothing is old enough yet.
  Outcome now = ws.Popvault("purge", {"--account", "cli2"});
  INFO(now.out << now.err);
  CHECK(now.exit_code == 0);
  CHECK_THAT(now.out, Contains("cli2: 0 message(s) purged"));
  CHECK(MessagesInTree(tree) == all);

  // Two days on.
  const std::vector<std::string> later = TwoDaysLater();
  Outcome dry = ws.Popvault("purge", {"--dry-run"}, later);
  INFO(dry.out << dry.err);
  CHECK(dry.exit_code == 1);  // held refuses
  CHECK_THAT(dry.err, Contains("held"));
  CHECK_THAT(dry.err, Contains("legal hold"));
  CHECK_THAT(dry.out, Contains("cli2: 3 message(s) would be purged"));
  CHECK_THAT(dry.out, Contains("other: 3 message(s) would be purged"));
  for (const auto& [name, shas] : batch) {
    for (const std::string& sha : shas) {
      INFO(name << " " << sha);
      CHECK((dry.out.find("id " + sha.substr(0, 16)) != std::string::npos) == (name != "held"));
    }
  }
  CHECK(MessagesInTree(tree) == all);
  CHECK(ws.Archived().size() == 9);

  Outcome one = ws.Popvault("purge", {"--account", "other"}, later);
  INFO(one.out << one.err);
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.out, Contains("other: 3 message(s) purged"));
  std::set<std::string> left = batch["cli2"];
  left.insert(batch["held"].begin(), batch["held"].end());
  CHECK(MessagesInTree(tree) == left);

  Outcome held = ws.Popvault("purge", {"--account", "held"}, later);
  INFO(held.out << held.err);
  CHECK(held.exit_code == 1);
  CHECK_THAT(held.err, Contains("legal hold"));
  CHECK(MessagesInTree(tree) == left);

  Outcome rest = ws.Popvault("purge", {}, later);
  INFO(rest.out << rest.err);
  CHECK(rest.exit_code == 1);
  CHECK_THAT(rest.out, Contains("cli2: 3 message(s) purged"));
  CHECK(MessagesInTree(tree) == batch["held"]);
  CHECK(ws.Archived().size() == 3);
}

// ---- Doctor ----

TEST_CASE("doctor rebuilds a lost ledger from the stores, and list shows everything again") {
  Deliver("cli2", "doctor", 3);
  Workspace ws({.user = "cli2", .stores = "local, tree", .store_sections = kTreeStore});
  Outcome sync = ws.Popvault("sync");
  INFO(sync.out << sync.err);
  REQUIRE(sync.exit_code == 0);
  const std::vector<ServerMessage> archived = ws.Archived();
  REQUIRE(archived.size() >= 3);

  fs::remove_all(ws.dir() + "/state/ledger");
  CHECK(ws.Archived().empty());
  Outcome dry = ws.Popvault("doctor", {"--dry-run", "--json"});
  INFO(dry.out << dry.err);
  CHECK(dry.exit_code == 0);
  CHECK_THAT(dry.out,
             Contains("\"unknown_records\":{\"count\":" + std::to_string(archived.size()) + ","));
  CHECK(ws.Archived().empty());  // --dry-run wrote nothing

  Outcome doctor = ws.Popvault("doctor");
  INFO(doctor.out << doctor.err);
  CHECK(doctor.exit_code == 0);
  CHECK_THAT(doctor.out,
             Contains("records the ledger does not know: " + std::to_string(archived.size())));
  CHECK_THAT(doctor.out, Contains(", consistent"));
  const std::vector<ServerMessage> rebuilt = ws.Archived();
  CHECK(ShaSet(rebuilt) == ShaSet(archived));
  CHECK(rebuilt.size() == archived.size());

  // Consistent now: a second run finds and writes nothing, and a sync
  // stores nothing new (it reads each message once more to prove that its
  // UIDL still names it: rebuilt entries know no LIST size).
  Outcome again = ws.Popvault("doctor", {"--json"});
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Contains("\"writes\":[]"));
  Outcome resync = ws.Popvault("sync");
  INFO(resync.out << resync.err);
  CHECK(resync.exit_code == 0);
  CHECK_THAT(resync.out, Contains(" 0 fetched"));

  // A damaged copy in one store is named; the other store's copy keeps the
  // message safe, so that is no data loss.
  const std::string victim = rebuilt.front().sha256;
  std::ofstream(MessageFile(ws.dir() + "/tree", victim), std::ios::trunc) << "junk";
  Outcome checked = ws.Popvault("doctor", {"--dry-run"});
  INFO(checked.out << checked.err);
  CHECK(checked.exit_code == 0);
  CHECK_THAT(checked.out, Contains("store tree: message"));
  CHECK_THAT(checked.out, Contains("would write uidl"));
  CHECK_THAT(checked.out, Contains("stored in local (id " + victim.substr(0, 16)));

  Outcome usage = ws.Popvault("doctor", {"--output", "x"});
  CHECK(usage.exit_code == 2);
  CHECK_THAT(usage.err, Contains("doctor does not take --output"));
}

}  // namespace
}  // namespace popvault::testing
