// Test harness for integration tests: the private Dovecot that the CTest
// fixture "dovecot" starts (tests/fixtures/dovecot.sh), the popvault binary
// run as a child process, and an independent reference POP3 reader.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace popvault::testing {

// KEY=value pairs from the fixture's env file (see tests/fixtures/README.md).
class FixtureEnv {
 public:
  static const FixtureEnv& Get();
  // The value of `key`; fails the test if the fixture did not write it.
  std::string operator[](const std::string& key) const;

 private:
  std::map<std::string, std::string> vars_;
};

struct Outcome {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;      // the signal that killed it, 0 if it exited
  std::string out;
  std::string err;
};

// A child process started by Spawn; Wait() collects its exit and output.
class Child {
 public:
  Child(int pid, std::string dir) : pid_(pid), dir_(std::move(dir)) {}
  Outcome Wait();  // bounded by a 10-minute watchdog
  int pid() const { return pid_; }

 private:
  int pid_;
  std::string dir_;  // holds the captured stdout and stderr
};

// Starts argv[0] with arguments and environment additions ("K=V"),
// capturing stdout and stderr.
Child Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// Spawn, then Wait.
Outcome Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// One message as the reference reader saw it on the server.
struct ServerMessage {
  std::string uidl_hex;
  std::string sha256;
  uint64_t size = 0;
  std::string bytes;  // the RETR data; only when asked for (DumpMailbox with_bytes)
};

// Reads the whole mailbox of fixture user `user` (e.g. "spare1") with
// tests/tools/pop3_dump.py, which shares no code with popvault. With
// `with_bytes`, each message's RETR data too.
std::vector<ServerMessage> DumpMailbox(const std::string& user, bool with_bytes = false);

// Dovecot's log (DOVECOT_LOG) once everything it will log about connections
// that closed before this call is in it. Dovecot's log process writes up to
// seconds late, so reading the file right after a run can miss a line (an
// absence check that cannot fail). The barrier: a login attempt under a user
// name nobody else uses (refused, ~0.5 s), awaited in the log (up to 60 s).
// Dovecot logs a connection when it closes, and the barrier's line comes
// after its refusal, well after every earlier connection closed.
std::string SettledDovecotLog();

// How often `needle` occurs in `text`.
size_t CountOf(const std::string& text, const std::string& needle);

// Adds `count` generated quirky messages to a fixture user's Maildir.
void FillMailbox(const std::string& user, int count, int seed);

std::string Sha256Hex(const std::string& bytes);
std::string HexOf(const std::string& bytes);
// The bytes of HexOf's lower-case hex (a UIDL as the reference reader gives it).
std::string Unhex(const std::string& hex);

// A whole file's bytes ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// The SHA-256s of `messages`, each as often as it occurs.
std::multiset<std::string> Shas(const std::vector<ServerMessage>& messages);
// The distinct SHA-256s of `messages`.
std::set<std::string> ShaSet(const std::vector<ServerMessage>& messages);
// UIDL (hex) -> SHA-256 of `messages` (of a repeated UIDL, the last).
std::map<std::string, std::string> ShaByUidl(const std::vector<ServerMessage>& messages);
// The UIDLs (hex) that more than one of `messages` has.
std::set<std::string> RepeatedUidls(const std::vector<ServerMessage>& messages);
// Of `uidls` (hex), those that `text` does not name, each after a space ("" if it names all).
std::string UidlsNotNamedIn(const std::string& text, const std::set<std::string>& uidls);

// The SHA-256s of the messages a filesystem store under `root` holds (none without messages/).
std::set<std::string> MessagesInTree(const std::string& root);

// Whether a corpus test must skip: the fixture found no shared corpus. Prints the "SKIPPED:"
// line CTest reports as a skip (SKIP_REGULAR_EXPRESSION); under CI=true fails the test instead,
// since a wrong corpus path must not pass as a skip.
bool CorpusMissing();

// A throwaway directory with a popvault config for one fixture user.
class Workspace {
 public:
  struct Account {
    std::string user;  // fixture user name
    std::string tls = "implicit";
    std::string host;     // default: POP3_HOST
    std::string ca_file;  // default: CA_FILE
    std::string retention = "keep";
    std::string extra;             // more "key = value" lines for the account
    std::string stores = "local";  // the account's stores
    std::string store_sections;    // [store.NAME] sections besides [store.local]
  };

  explicit Workspace(const Account& account);
  ~Workspace();

  const std::string& dir() const { return dir_; }
  const std::string& config() const { return config_; }
  void Rewrite(const Account& account);

  // Runs `popvault <command> --config <config> <args...>`.
  Outcome Popvault(const std::string& command, const std::vector<std::string>& args = {},
                   const std::vector<std::string>& env = {}) const;
  std::vector<std::string> PopvaultArgv(const std::string& command,
                                        const std::vector<std::string>& args = {}) const;

  // `popvault list --json` as (uidl-hex, sha256) per archived message.
  std::vector<ServerMessage> Archived() const;

  // Reads every message object of every store in the config back through
  // its plugin (tests/integration/read_stores.cc, not the ledger) and checks
  // that each store holds exactly the distinct messages of `expected` (from
  // DumpMailbox with bytes), each byte for byte. Run it while no popvault
  // runs on the workspace (a RocksDB store is one process's).
  // With `exactly` false, the stores may hold other messages too.
  void CheckStoresHold(const std::vector<ServerMessage>& expected, bool exactly = true) const;

 private:
  std::string dir_;
  std::string config_;
};

// Fixture user `user`'s mailbox with bytes (DumpMailbox), required to hold the fixture's count
// (env USER_MESSAGES), at least `at_least` messages, and no repeated UIDL: a listing popvault
// may trust.
std::vector<ServerMessage> TrustedMailbox(const std::string& user, size_t at_least);

// Runs `popvault sync` in `ws` (an account with retention delete_after_archive reading fixture
// user `user`) and checks that `before`, all the server held, was archived byte-exact (same
// UIDLs and SHA-256s, in every store) and then deleted from the server.
void CheckSyncArchivesThenDeletes(const Workspace& ws, const std::string& user,
                                  const std::vector<ServerMessage>& before);

// Runs `popvault sync` in `ws` (an account with retention delete_after_archive reading fixture
// user `user`, whose listing `before` repeats the UIDLs `repeated`) and checks that nothing was
// deleted from the server, a warning names each repeated UIDL, every store holds every message
// byte for byte and the ledger knows each content. Returns the sync's outcome.
Outcome CheckSyncKeepsUntrustedListing(const Workspace& ws, const std::string& user,
                                       const std::vector<ServerMessage>& before,
                                       const std::set<std::string>& repeated);

}  // namespace popvault::testing
