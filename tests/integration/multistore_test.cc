// One account archived into three stores at once (rocksdb, filesystem, and
// S3 on the Ceph RGW fixture), with RGW stopped in the middle of a sync.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "harness.h"
#include "s3_client.h"

namespace popvault::testing {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> RgwEnv() {
  std::map<std::string, std::string> vars;
  std::ifstream in(POPVAULT_RGW_ENV);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  INFO("RGW fixture env " << POPVAULT_RGW_ENV);
  REQUIRE(vars.count("S3_ENDPOINT"));
  return vars;
}

std::unique_ptr<s3::S3Client> Client(const std::string& bucket) {
  std::map<std::string, std::string> env = RgwEnv();
  s3::S3Config config;
  config.https = false;
  config.host = env["S3_HOST"];
  config.port = static_cast<uint16_t>(std::stoi(env["S3_PORT"]));
  config.bucket = bucket;
  config.region = env["S3_REGION"];
  config.virtual_host = false;
  config.credentials = {env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], ""};
  std::unique_ptr<s3::S3Client> client;
  REQUIRE(s3::S3Client::Create(config, &client).ok());
  return client;
}

// SHA-256s of the messages an S3 bucket holds.
std::set<std::string> MessagesInBucket(const std::string& bucket) {
  auto client = Client(bucket);
  std::set<std::string> shas;
  std::string token;
  do {
    s3::ListPage page;
    REQUIRE(client->ListObjects("messages/", token, &page).ok());
    for (const std::string& key : page.keys) {
      shas.insert(fs::path(key).stem().string());
    }
    token = page.next_token;
  } while (!token.empty());
  return shas;
}

void Rgw(const std::string& verb) {
  Outcome o = Run({RgwEnv()["RGW_SCRIPT"], verb, RgwEnv()["CEPH_DIR"]});
  INFO(verb << ": " << o.out << o.err);
  REQUIRE(o.exit_code == 0);
}

TEST_CASE("three stores per account: RGW stopped mid-sync delays deletion and loses nothing") {
  FillMailbox("spare6", 24, 66);
  const std::vector<ServerMessage> original = DumpMailbox("spare6");
  const std::string bucket = "multistore-" + std::to_string(getpid());
  REQUIRE(Client(bucket)->CreateBucket().ok());
  std::map<std::string, std::string> rgw = RgwEnv();

  Workspace::Account account{.user = "spare6", .retention = "delete_after_archive"};
  account.stores = "local, tree, offsite";
  account.store_sections =
      "[store.tree]\nplugin = filesystem\npath = tree\n\n"
      "[store.offsite]\nplugin = s3\nendpoint = " +
      rgw["S3_ENDPOINT"] + "\nbucket = " + bucket + "\nregion = " + rgw["S3_REGION"] +
      "\naddressing = path\naccess_key = " + rgw["S3_ACCESS_KEY"] +
      "\nsecret_key = " + rgw["S3_SECRET_KEY"] + "\nmax_retries = 1\ntimeout = 5\n";
  Workspace ws(account);

  // Pause after the 8th message is in all three stores, stop RGW, go on.
  const std::string pause = ws.dir() + "/paused";
  Child sync = Spawn(ws.PopvaultArgv("sync"), {"POPVAULT_PAUSE_AT=stored:8:" + pause});
  for (int i = 0; i < 600 && !fs::exists(pause); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(fs::exists(pause));
  Rgw("stop-rgw");
  fs::remove(pause);
  Outcome first = sync.Wait();
  INFO(first.out << first.err);
  CHECK(first.exit_code == 1);
  CHECK_THAT(first.err, Catch::Matchers::Contains("store 'offsite'"));

  // Everything reached the stores that were up; nothing left the server,
  // since nothing was in all three stores and verified there.
  CHECK(DumpMailbox("spare6").size() == original.size());
  CHECK(MessagesInTree(ws.dir() + "/tree") == ShaSet(original));

  Rgw("restart-rgw");
  Outcome second = ws.Popvault("sync");
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(DumpMailbox("spare6").empty());
  CHECK(MessagesInBucket(bucket) == ShaSet(original));
  CHECK(MessagesInTree(ws.dir() + "/tree") == ShaSet(original));
  CHECK(ws.Archived().size() == original.size());

  // Each store on its own gives every message back byte-exact.
  for (const char* store : {"local", "tree", "offsite"}) {
    account.stores = store;
    ws.Rewrite(account);
    const std::string out = ws.dir() + "/export-" + store;
    Outcome exported = ws.Popvault("export", {"--output", out});
    INFO(store << ": " << exported.out << exported.err);
    REQUIRE(exported.exit_code == 0);
    for (const ServerMessage& m : original) {
      std::ifstream in(out + "/spare6/" + m.sha256 + ".eml", std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      CHECK(Sha256Hex(bytes) == m.sha256);
    }
  }
}

}  // namespace
}  // namespace popvault::testing
