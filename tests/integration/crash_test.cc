// Crash safety: a sync with delete_after_archive is killed with SIGKILL at
// each dangerous point and run again. Mail may be delayed, never lost or
// stored twice: server ∪ archive always covers the original set, and once the
// server is empty every store gives back every original message byte for byte.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "archive/record.h"
#include "harness.h"

namespace popvault::testing {
namespace {

// Every original message is on the server or in the archive, and the archive
// holds each UIDL at most once.
void CheckNothingLost(const Workspace& ws, const std::vector<ServerMessage>& original) {
  std::vector<ServerMessage> archived = ws.Archived();
  std::set<std::string> uidls;
  for (const ServerMessage& m : archived) {
    INFO("uidl " << m.uidl_hex << " archived twice");
    CHECK(uidls.insert(m.uidl_hex).second);
  }
  std::multiset<std::string> have = Shas(archived);
  for (const ServerMessage& m : DumpMailbox("spare5")) {
    if (!uidls.count(m.uidl_hex)) have.insert(m.sha256);
  }
  CHECK(have == Shas(original));
}

TEST_CASE("kill -9 at any point of a deleting sync loses and duplicates nothing") {
  FillMailbox("spare5", 30, 5);
  const std::vector<ServerMessage> original = DumpMailbox("spare5", /*with_bytes=*/true);
  REQUIRE(original.size() >= 30);
  Workspace ws({.user = "spare5", .retention = "delete_after_archive"});

  // Each point is reached in the state the previous crash left behind.
  const char* crashes[] = {
      "retr-data:6",  // in the middle of the RETRs, nothing committed
      "stored:4",     // objects written, ledger not yet
      "committed:1",  // ledger synced, no DELE sent yet
      "deleted:3",    // DELEs sent, QUIT not
  };
  for (const char* crash : crashes) {
    Outcome o = ws.Popvault("sync", {}, {std::string("POPVAULT_CRASH_AT=") + crash});
    INFO("crash at " << crash << ": " << o.out << o.err);
    REQUIRE(o.signal == SIGKILL);
    CheckNothingLost(ws, original);
    CHECK(DumpMailbox("spare5").size() == original.size());  // no QUIT, no deletion
  }

  Outcome done = ws.Popvault("sync");
  INFO(done.out << done.err);
  REQUIRE(done.exit_code == 0);
  CHECK(DumpMailbox("spare5").empty());
  CheckNothingLost(ws, original);
  CHECK(ws.Archived().size() == original.size());
  // The ledger says so; the stores must too: the server's copies are gone.
  ws.CheckStoresHold(original);
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoull(v) : fallback;
}

// uidl (EncodeUidl form) -> sha256 of each "deleted" line, in order.
std::multimap<std::string, std::string> AuditedDeletions(const std::string& path) {
  std::multimap<std::string, std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    Poco::JSON::Parser parser;
    auto o = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
    if (o->getValue<std::string>("event") != "deleted") continue;
    out.emplace(o->getValue<std::string>("uidl"), o->getValue<std::string>("sha256"));
  }
  return out;
}

// What new mail the round delivered, with its bytes, by UIDL.
void Deliver(const std::string& user, int count, int seed,
             std::map<std::string, ServerMessage>* offered) {
  FillMailbox(user, count, seed);
  for (ServerMessage& m : DumpMailbox(user, /*with_bytes=*/true)) {
    offered->emplace(m.uidl_hex, std::move(m));
  }
}

// kill -9 at seeded random moments (a random test point and hit, or a random
// delay), with new mail between rounds, against the real Dovecot and two
// stores. After every kill, each message that has left the server is in
// every store byte for byte; at the end a clean pass empties the server and
// the audit log has exactly one line per deletion. POPVAULT_DOVECOT_KILLS
// (default 20) and POPVAULT_CHAOS_SEED (default 1) make a longer run
// (scripts/chaos.sh --dovecot-kills N); a failure names the seed and round.
TEST_CASE("kill -9 at random moments against Dovecot: nothing lost, each deletion audited once") {
  const uint64_t seed = EnvNumber("POPVAULT_CHAOS_SEED", 1);
  const uint64_t kills = EnvNumber("POPVAULT_DOVECOT_KILLS", 20);
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return rng() % n; };
  const std::string user = "chaos1";
  std::map<std::string, ServerMessage> offered;  // every message ever on the server
  Deliver(user, 40, static_cast<int>(seed), &offered);
  Workspace ws({.user = user,
                .retention = "delete_after_archive",
                .stores = "local, tree",
                .store_sections = "[store.tree]\nplugin = filesystem\npath = tree\n"});
  const char* points[] = {"retr-data", "stored", "committed", "deleted"};
  uint64_t killed = 0;
  for (uint64_t round = 0; round < kills; ++round) {
    INFO("seed " << seed << ", round " << round << " (reproduce: POPVAULT_CHAOS_SEED=" << seed
                 << " POPVAULT_DOVECOT_KILLS=" << kills << ")");
    // New mail every round, so each pass has messages to fetch, store and
    // delete, and a test point's hit number below is reached.
    const int count = 4 + static_cast<int>(pick(10));
    Deliver(user, count, static_cast<int>(rng()), &offered);
    Outcome o;
    if (pick(2) == 0) {
      const std::string point = points[pick(4)];
      // retr-data: a hit per chunk the RETR delivers; stored and deleted: per
      // message; committed: per group (one, for so few messages).
      const uint64_t hit = point == "committed" ? 1 : 1 + pick(point == "retr-data" ? 20 : count);
      o = ws.Popvault("sync", {}, {"POPVAULT_CRASH_AT=" + point + ":" + std::to_string(hit)});
    } else {
      Child child = Spawn(ws.PopvaultArgv("sync"));
      std::this_thread::sleep_for(std::chrono::milliseconds(pick(500)));
      kill(child.pid(), SIGKILL);
      o = child.Wait();
    }
    INFO(o.out << o.err);
    CHECK((o.signal == SIGKILL || o.exit_code == 0));
    killed += o.signal == SIGKILL;
    std::set<std::string> on_server;
    for (const ServerMessage& m : DumpMailbox(user)) on_server.insert(m.uidl_hex);
    std::vector<ServerMessage> gone;
    for (const auto& [uidl, m] : offered) {
      if (!on_server.count(uidl)) gone.push_back(m);
    }
    ws.CheckStoresHold(gone, /*exactly=*/false);
  }
  INFO("seed " << seed << ": " << killed << " of " << kills << " runs killed");
  // The test points nearly always kill; a timed kill may come after the end.
  CHECK(killed * 3 >= kills);

  Outcome done = ws.Popvault("sync");
  INFO(done.out << done.err);
  REQUIRE(done.exit_code == 0);
  CHECK(DumpMailbox(user).empty());
  std::vector<ServerMessage> all;
  for (const auto& [uidl, m] : offered) all.push_back(m);
  ws.CheckStoresHold(all);
  const std::multimap<std::string, std::string> audited =
      AuditedDeletions(ws.dir() + "/state/audit.log");
  CHECK(audited.size() == offered.size());
  for (const auto& [uidl_hex, m] : offered) {
    std::string uidl;
    for (size_t i = 0; i + 1 < uidl_hex.size(); i += 2) {
      uidl.push_back(static_cast<char>(std::stoi(uidl_hex.substr(i, 2), nullptr, 16)));
    }
    INFO("uidl " << uidl);
    const std::string encoded = EncodeUidl(uidl);
    CHECK(audited.count(encoded) == 1);
    auto it = audited.find(encoded);
    if (it != audited.end()) CHECK(it->second == m.sha256);
  }
}

}  // namespace
}  // namespace popvault::testing
