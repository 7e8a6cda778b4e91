// popvault_chaos: a seeded simulation of one account's life (issue #12).
//
// Each step either changes the model server's maildrop (new mail, another
// client's deletions, reused and repeated UIDLs) or runs one sync pass: a
// fork()ed child opens the real ledger, the real filesystem stores behind
// FaultyStore and the audit log, and runs SyncAccount with the real
// Pop3Session over loopback against the ModelSession this process serves
// from a single-threaded poll() loop (so fork() is safe). The parent may
// SIGKILL the child at a seeded moment. After every step the oracle checks
// the promise; the first violation prints a one-line reproduction.
#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/Logger.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "chaos_common.h"
#include "faulty_store.h"
#include "filesystem_storage.h"
#include "model_server.h"
#include "oracle.h"
#include "sync/sync_engine.h"

namespace popvault::chaos {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kAccount = "chaos";
constexpr int kExitPassFailed = 3;  // the child's SyncAccount returned an error

struct Options {
  uint64_t seed = 1;
  uint64_t steps = 2000;  // 0: no limit (with --minutes)
  double minutes = 0;     // > 0: also stop at this time limit
  FaultClasses faults;
  std::string faults_arg;  // as given, for the reproduction line
  uint64_t rss_limit_mb = 256;
  // Two by default: a store failing while the other works is where a DELE
  // for a message that one store lacks would slip through.
  uint64_t stores = 2;
  bool keep = false;  // keep the work directory
  bool drain = true;  // fault-free passes at the end must empty the maildrop
};

// What a pass's popvault process gets besides the shared work directory.
struct ChildPlan {
  uint16_t port = 0;
  std::vector<StorageFaultRates> rates;  // per store
  uint64_t fault_seed = 0;
  std::string crash_at;  // POPVAULT_CRASH_AT
  bool pipelining = true;
  bool prefetch_listing = true;
  size_t commit_every = 256;
};

struct Totals {
  uint64_t steps = 0, passes = 0, passes_ok = 0, kills = 0, deletions = 0, other_deletions = 0,
           storage_faults = 0, torn = 0, max_rss_kb = 0;
};

class Runner {
 public:
  explicit Runner(const Options& o) : o_(o), rng_(Mix(o.seed, 0)), mailbox_(o.seed) {}

  // 0: every check held; 1: a violation (reported); 2: the harness failed.
  int Run() {
    if (!Setup()) return 2;
    start_ = Clock::now();
    auto out_of_time = [&] {
      return o_.minutes > 0 &&
             Clock::now() - start_ > std::chrono::duration<double, std::ratio<60>>(o_.minutes);
    };
    for (step_ = 1; (o_.steps == 0 || step_ <= o_.steps) && !out_of_time(); ++step_) {
      Step();
      totals_.steps = step_;
      if (!violation_.empty()) return Fail();
    }
    if (o_.drain) Drain();
    if (!violation_.empty()) return Fail();
    Summary("ok");
    if (!o_.keep) fs::remove_all(work_);
    return 0;
  }

 private:
  bool Setup() {
    // tmpfs where there is one: a kill -9 loses no page cache, so fsync
    // buys nothing here, and costs most of a pass on a busy disk.
    std::string tmpl = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    tmpl += "/popvault-chaos-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return Error("mkdtemp");
    work_ = tmpl;
    std::vector<std::pair<std::string, std::string>> roots;
    for (uint64_t i = 0; i < o_.stores; ++i) {
      roots.emplace_back(work_ + "/store" + std::to_string(i), "s" + std::to_string(i));
    }
    oracle_ = std::make_unique<Oracle>(roots);
    stores_ = roots;
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return Error("loopback listener");
    }
    port_ = ntohs(addr.sin_port);
    return true;
  }

  bool Error(const std::string& what) {
    std::fprintf(stderr, "chaos: %s: %s\n", what.c_str(), std::strerror(errno));
    return false;
  }

  // ---- Steps ----

  void Step() {
    const uint64_t r = rng_.Below(100);
    if (r < 22 || mailbox_.live().size() > 80) return Pass(/*faults=*/true);
    if (r < 70) {
      for (uint64_t n = rng_.Between(1, 4); n > 0; --n) mailbox_.Deliver(rng_);
    } else if (r < 82 && o_.faults(FaultClasses::kOtherDelete)) {
      OtherClientDeletes(rng_);
    } else if (r < 90 && o_.faults(FaultClasses::kUidlReuse) && !mailbox_.gone_uidls().empty()) {
      // A new message under a UIDL whose message is gone: RFC 1939 only
      // asks UIDLs to be unique within a maildrop at one time.
      const auto& gone = mailbox_.gone_uidls();
      mailbox_.Deliver(rng_, gone[rng_.Below(gone.size())]);
    } else if (r < 95 && o_.faults(FaultClasses::kRepeatedUidl) && !mailbox_.live().empty()) {
      const auto& live = mailbox_.live();
      mailbox_.Deliver(rng_, mailbox_.mail(live[rng_.Below(live.size())]).uidl);
    } else {
      mailbox_.Deliver(rng_);
    }
  }

  // Another client removes a message. Fine for popvault only if it was
  // never due, or is archived byte-exact.
  void OtherClientDeletes(Rng& rng) {
    const auto& live = mailbox_.live();
    if (live.empty()) return;
    Mail& m = mailbox_.mail(live[rng.Below(live.size())]);
    mailbox_.Remove(m.id, Mail::Fate::kDeletedByOther);
    totals_.other_deletions++;
    std::string why;
    if (m.due && !oracle_->ArchivedEverywhere(m, &why)) {
      Violate("lost", "message " + Describe(m) +
                          " was listed by a pass that ended OK, then deleted by another client, "
                          "and is not archived: " +
                          why);
    }
  }

  // ---- One pass ----

  // Each fault class draws from its own stream of the pass: switching one
  // off leaves the others' schedule as it was.
  class Streams {
   public:
    Streams(uint64_t seed, const FaultClasses& on, bool faults)
        : seed_(seed), on_(on), faults_(faults) {}
    // The class's stream if it strikes in this pass (percent), else nullptr.
    Rng* Strikes(const char* name, int percent) {
      Rng& r = streams_.try_emplace(name, Mix(seed_, std::hash<std::string>()(name))).first->second;
      return r.Percent(percent) && faults_ && on_(name) ? &r : nullptr;
    }

   private:
    uint64_t seed_;
    const FaultClasses& on_;
    bool faults_;
    std::map<std::string, Rng> streams_;
  };

  SessionPlan DrawSession(Rng& rng, bool faults) {
    SessionPlan p;
    p.seed = rng.Next();
    p.pipelining = rng.Percent(80);
    Streams s(rng.Next(), o_.faults, faults);
    const uint64_t live = mailbox_.live().size();
    const auto commands = static_cast<int>(6 + 2 * live);
    uint64_t reply_bytes = 200;
    for (uint64_t id : mailbox_.live()) {
      reply_bytes += mailbox_.mail(id).size * 103 / 100 + 40;
    }
    if (Rng* r = s.Strikes(FaultClasses::kErr, 15)) {
      p.err_at_command = static_cast<int>(r->Between(1, commands));
    }
    if (Rng* r = s.Strikes(FaultClasses::kDisconnect, 8)) {
      p.drop_at_byte = static_cast<int64_t>(r->Below(reply_bytes));
    }
    if (Rng* r = s.Strikes(FaultClasses::kStall, 8)) {
      p.stall_at_command = static_cast<int>(r->Between(1, commands));
      p.stall_ms = static_cast<int>(r->Between(20, 400));
    }
    p.slow = s.Strikes(FaultClasses::kSlow, 5) != nullptr;
    if (Rng* r = s.Strikes(FaultClasses::kKill, 10)) {
      if (r->Percent(50)) {
        p.kill_at_command = static_cast<int>(r->Between(1, commands));
      } else {
        p.kill_at_byte = static_cast<int64_t>(r->Below(reply_bytes));
      }
    }
    p.kill_after_quit = s.Strikes(FaultClasses::kKillAfterQuit, 6) != nullptr;
    if (Rng* r = s.Strikes(FaultClasses::kKillTimed, 8)) {
      p.kill_after_ms = static_cast<int>(r->Between(0, 150));
    }
    p.lose_quit_ok = !p.kill_after_quit && s.Strikes(FaultClasses::kLostQuitOk, 6) != nullptr;
    if (Rng* r = s.Strikes(FaultClasses::kUidlOmit, 8); r && live > 0) {
      p.omit_uidl_of = r->Between(1, live);
    }
    if (Rng* r = s.Strikes(FaultClasses::kListLie, 15); r && live > 0) {
      for (uint64_t n = r->Between(1, 3); n > 0; --n) {
        const uint64_t msgno = r->Between(1, live);
        const uint64_t size = mailbox_.mail(mailbox_.live()[msgno - 1]).size;
        const uint64_t lies[] = {0, size / 2, size * 2 + 17, size + 1, 1};
        p.list_lies[msgno] = lies[r->Below(5)];
      }
    }
    if (Rng* r = s.Strikes(FaultClasses::kDuringSession, 20)) {
      if (o_.faults(FaultClasses::kOtherDelete) && r->Percent(50)) {
        p.other_delete_at_command = static_cast<int>(r->Between(1, commands));
      } else {
        p.deliver_at_command = static_cast<int>(r->Between(1, commands));
      }
    }
    return p;
  }

  ChildPlan DrawChild(Rng& rng, bool faults) {
    ChildPlan c;
    c.port = port_;
    c.fault_seed = rng.Next();
    c.pipelining = rng.Percent(85);
    c.prefetch_listing = rng.Percent(70);
    c.commit_every = rng.Between(1, 12);
    // Storage faults strike in 40% of the passes, each class at its own rate.
    Streams s(rng.Next(), o_.faults, faults && rng.Percent(40));
    for (size_t i = 0; i < stores_.size(); ++i) {
      auto rate = [&](const char* name) -> unsigned {
        Rng* r = s.Strikes(name, 50);
        return r ? static_cast<unsigned>(r->Between(5, 60)) : 0;
      };
      StorageFaultRates rates;
      rates.enospc = rate(FaultClasses::kEnospc);
      rates.eio = rate(FaultClasses::kEio);
      rates.torn = rate(FaultClasses::kTorn);
      rates.wrong_read = rate(FaultClasses::kWrongRead);
      rates.latency = rate(FaultClasses::kLatency);
      c.rates.push_back(rates);
    }
    // SIGKILL from inside the engine, at the moments between the protocol's
    // (objects stored but not committed, committed, DELE marked).
    Streams kill(rng.Next(), o_.faults, faults);
    if (Rng* r = kill.Strikes(FaultClasses::kKill, 6)) {
      static const char* kPoints[] = {"retr-data", "stored", "committed", "deleted"};
      c.crash_at = std::string(kPoints[r->Below(4)]) + ":" + std::to_string(r->Between(1, 5));
    }
    return c;
  }

  void Pass(bool faults) {
    const uint64_t pass = ++totals_.passes;
    Rng rng(Mix(o_.seed, 1000003 + pass));
    const SessionPlan plan = DrawSession(rng, faults);
    const ChildPlan child = DrawChild(rng, faults);
    ::truncate((work_ + "/faults.log").c_str(), 0);
    fork_time_ = Clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) {
      Violate("harness", std::string("fork: ") + std::strerror(errno));
      return;
    }
    if (pid == 0) ::_exit(RunChild(child));

    bool killed = false;
    std::vector<uint64_t> snapshot;
    int status = 0;
    rusage usage{};
    const auto started = Clock::now();
    Serve(pid, plan, &killed, &snapshot, &status, &usage);
    if (std::getenv("CHAOS_TRACE")) {
      std::fprintf(stderr, "pass %llu: %.3f s, status %d, killed %d, live %zu\n",
                   static_cast<unsigned long long>(pass),
                   std::chrono::duration<double>(Clock::now() - started).count(), status, killed,
                   mailbox_.live().size());
    }
    totals_.max_rss_kb = std::max<uint64_t>(totals_.max_rss_kb, usage.ru_maxrss);

    std::set<std::string> torn_now = ReadFaultLog();
    for (const std::string& sha : torn_now) torn_.insert(sha);
    // Killed by us (a SIGKILL may also find it already exited) or by its
    // own test point.
    const bool sigkilled = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    killed = sigkilled && (killed || !child.crash_at.empty());
    if (killed) totals_.kills++;
    if (!killed && !(WIFEXITED(status) &&
                     (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == kExitPassFailed))) {
      Violate("crash", "popvault died on its own (wait status " + std::to_string(status) +
                           "); see " + work_ + "/pass.log");
    }
    if (static_cast<uint64_t>(usage.ru_maxrss) > o_.rss_limit_mb * 1024) {
      Violate("rss", "peak RSS " + std::to_string(usage.ru_maxrss / 1024) + " MB over " +
                         std::to_string(o_.rss_limit_mb) + " MB");
    }
    const bool ok = !killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) return;
    totals_.passes_ok++;
    // The pass listed these and said OK: they are archived, and must stay
    // so (a listing it does not trust is archived too, only not deleted).
    for (uint64_t id : snapshot) {
      Mail& m = mailbox_.mail(id);
      if (m.due || m.fate == Mail::Fate::kDeletedByOther || torn_.count(m.sha256)) continue;
      m.due = true;
      std::string why;
      if (!oracle_->ArchivedEverywhere(m, &why)) {
        Violate("unarchived", "pass " + std::to_string(pass) + " listed message " + Describe(m) +
                                  " and returned OK, but did not archive it: " + why);
      }
    }
    if (ListingTrusted(snapshot, plan) && PassSawTrustedListing()) CheckAudit();
  }

  // Serves the pass's POP3 session until the child is gone.
  void Serve(pid_t pid, const SessionPlan& plan, bool* killed, std::vector<uint64_t>* snapshot,
             int* status, rusage* usage) {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    std::unique_ptr<ModelSession> session;
    bool sessions = false;
    SessionEvents events;
    events.dele = [this](const Mail& m) { CheckDele(m); };
    events.committed = [this](uint64_t id) {
      totals_.deletions++;
      committed_.push_back(id);
    };
    events.kill = [&] {
      ::kill(pid, SIGKILL);
      *killed = true;
    };
    events.other_delete = [this](Rng& r) { OtherClientDeletes(r); };
    events.deliver = [this](Rng& r) { mailbox_.Deliver(r); };
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    const auto kill_at = fork_time_ + std::chrono::milliseconds(plan.kill_after_ms);
    for (;;) {
      if (Clock::now() > deadline) {
        Violate("hang", "the pass did not end within 60 s; see " + work_ + "/pass.log");
        ::kill(pid, SIGKILL);
      }
      if (plan.kill_after_ms >= 0 && !*killed && Clock::now() >= kill_at) events.kill();
      pollfd fds[3];
      nfds_t n = 0;
      fds[n++] = {session && !session->done() ? session->fd() : listener_,
                  static_cast<short>(session && !session->done() ? session->PollEvents() : POLLIN),
                  0};
      if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
      int timeout = session && !session->done() ? session->PollTimeoutMs() : -1;
      if (pidfd < 0 && (timeout < 0 || timeout > 5)) timeout = 5;
      if (timeout < 0 || timeout > 1000) timeout = 1000;
      if (plan.kill_after_ms >= 0 && !*killed) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count() +
            1;
        timeout = static_cast<int>(std::clamp<int64_t>(left, 0, timeout));
      }
      const int ready = ::poll(fds, n, timeout);
      if (ready < 0 && errno != EINTR) break;
      if (session && !session->done()) {
        session->Service(ready > 0 ? fds[0].revents : 0);
        if (session->done()) *snapshot = session->snapshot();
      } else if (ready > 0 && (fds[0].revents & POLLIN)) {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        // One session per pass, as SyncAccount opens one.
        if (fd >= 0 && sessions) ::close(fd);
        if (fd >= 0 && !sessions) {
          sessions = true;
          session = std::make_unique<ModelSession>(fd, mailbox_, plan, events);
        }
      }
      if (::wait4(pid, status, WNOHANG, usage) == pid) break;
    }
    if (session && !session->done()) {
      *snapshot = session->snapshot();
      session->Close();
    }
    if (pidfd >= 0) ::close(pidfd);
  }

  // The oracle at a DELE: the archive must already hold the message
  // byte-exact in every store, whatever happens to the DELE next.
  void CheckDele(const Mail& m) {
    std::string why;
    if (!oracle_->ArchivedEverywhere(m, &why)) {
      Violate("deleted_unverified", "DELE sent for message " + Describe(m) + ": " + why);
    }
  }

  // Deletions the audit log must hold once a pass has seen the maildrop
  // without them. Only after a trusted listing: otherwise popvault cannot
  // tell a deletion from a listing that omits a message.
  bool ListingTrusted(const std::vector<uint64_t>& snapshot, const SessionPlan& plan) {
    std::set<std::string> uidls;
    for (uint64_t id : snapshot) uidls.insert(mailbox_.mail(id).uidl);
    return plan.omit_uidl_of == 0 && uidls.size() == snapshot.size();
  }

  // Whether the pass got a listing it could trust (its own report, in
  // pass.log): a UIDL refused by an injected -ERR leaves none, and deletions
  // of earlier passes are only confirmed from a trusted listing. (A pass that
  // never trusts one is caught by the final drain.)
  bool PassSawTrustedListing() const {
    std::ifstream in(work_ + "/pass.log");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("pass: ", 0) == 0) return line.find(" trusted 1)") != std::string::npos;
    }
    return false;
  }

  void CheckAudit() {
    std::string bad;
    std::map<std::string, int> audited =
        Oracle::AuditedDeletions(work_ + "/audit.log", kAccount, &bad);
    if (!bad.empty()) Violate("audit_malformed", bad);
    for (uint64_t id : committed_) {
      const Mail& m = mailbox_.mail(id);
      const int n = audited.count(m.sha256) ? audited[m.sha256] : 0;
      if (n == 0)
        Violate("audit_missing", "the server committed the deletion of " + Describe(m) +
                                     " but the audit log has no line for it");
      if (n > 1)
        Violate("audit_duplicate", "the audit log has " + std::to_string(n) +
                                       " lines for the deletion of " + Describe(m));
    }
    for (uint64_t id : mailbox_.live()) {
      const Mail& m = mailbox_.mail(id);
      if (audited.count(m.sha256)) {
        Violate("audit_spurious", "the audit log records the deletion of " + Describe(m) +
                                      ", which is still on the server");
      }
    }
  }

  // The contents torn in this pass (FaultyStore's log); counts the faults.
  std::set<std::string> ReadFaultLog() {
    std::set<std::string> torn;
    std::ifstream in(work_ + "/faults.log");
    std::string store, fault, key;
    while (in >> store >> fault >> key) {
      totals_.storage_faults++;
      if (fault != "torn") continue;
      totals_.torn++;
      // messages/ab/<sha>.zst
      const size_t slash = key.rfind('/');
      torn.insert(key.substr(slash + 1, key.size() - slash - 1 - 4));
    }
    return torn;
  }

  // ---- The popvault process of a pass ----

  int RunChild(const ChildPlan& c) {
    ::close(listener_);
    const int log = ::open((work_ + "/pass.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::close(log);
    }
    if (!c.crash_at.empty()) ::setenv("POPVAULT_CRASH_AT", c.crash_at.c_str(), 1);
    Poco::Logger::root().setChannel(Poco::AutoPtr<Poco::Channel>(new Poco::ConsoleChannel));
    Poco::Logger::root().setLevel("information");
    Poco::Logger::get("popvault.sync").setChannel(Poco::Logger::root().getChannel());
    Poco::Logger::get("popvault.sync").setLevel("information");
    const int fault_log =
        ::open((work_ + "/faults.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);

    std::unique_ptr<Ledger> ledger;
    std::unique_ptr<AuditLog> audit;
    Status s = Ledger::Open(work_ + "/ledger", &ledger);
    if (s.ok()) s = AuditLog::Open(work_ + "/audit.log", &audit);
    AccountConfig account;
    account.name = kAccount;
    account.retention = RetentionPolicy(RetentionPolicy::Kind::kDeleteAfterArchive);
    Pop3Options& pop3 = account.pop3;
    pop3.host = "127.0.0.1";
    pop3.port = c.port;
    pop3.tls = TlsMode::kNone;
    pop3.allow_plaintext_auth = true;
    pop3.auth = AuthMethod::kUser;
    pop3.user = "chaos";
    pop3.password = "chaos";
    pop3.pipelining = c.pipelining;
    pop3.prefetch_listing = c.prefetch_listing;
    // Above the longest stall the model server makes.
    pop3.connect_timeout = pop3.reply_timeout = pop3.idle_timeout = std::chrono::seconds(10);
    std::vector<std::unique_ptr<Archive>> archives;
    std::vector<Archive*> pointers;
    for (size_t i = 0; s.ok() && i < stores_.size(); ++i) {
      std::unique_ptr<Storage> fs_store;
      s = OpenFilesystemStorage(stores_[i].first, &fs_store);
      if (!s.ok()) break;
      archives.push_back(std::make_unique<Archive>(
          stores_[i].second,
          std::make_unique<FaultyStore>(std::move(fs_store), stores_[i].second, c.rates[i],
                                        Mix(c.fault_seed, i), fault_log),
          3));
      pointers.push_back(archives.back().get());
      account.stores.push_back(stores_[i].second);
    }
    SyncOptions options;
    options.spool_dir = work_;
    options.audit_log = audit.get();
    options.commit_every_messages = c.commit_every;
    SyncReport report;
    if (s.ok()) s = SyncAccount(account, *ledger, pointers, options, &report);
    std::printf("pass: %s (listed %llu fetched %llu deleted %llu verify_failed %llu trusted %d)\n",
                s.ToString().c_str(), static_cast<unsigned long long>(report.listed),
                static_cast<unsigned long long>(report.fetched),
                static_cast<unsigned long long>(report.deleted),
                static_cast<unsigned long long>(report.verify_failed),
                report.listing_trusted ? 1 : 0);
    std::fflush(stdout);
    archives.clear();
    ledger.reset();
    return s.ok() ? 0 : kExitPassFailed;
  }

  // ---- The end ----

  // Fault-free passes: storage errors and dropped sessions only delay, so
  // these must archive and delete everything (unless a repeated UIDL makes
  // the listing untrusted for good).
  void Drain() {
    for (int i = 0; i < 4 && violation_.empty() && !mailbox_.live().empty(); ++i) {
      ++step_;
      Pass(/*faults=*/false);
    }
    std::set<std::string> uidls;
    for (uint64_t id : mailbox_.live()) uidls.insert(mailbox_.mail(id).uidl);
    if (violation_.empty() && !mailbox_.live().empty() && uidls.size() == mailbox_.live().size()) {
      Violate("not_drained",
              std::to_string(mailbox_.live().size()) +
                  " message(s) still on the server after 4 fault-free passes, e.g. " +
                  Describe(mailbox_.mail(mailbox_.live().front())));
    }
    // Nothing popvault deleted may have decayed since.
    for (uint64_t id : committed_) {
      std::string why;
      if (violation_.empty() && !oracle_->ArchivedEverywhere(mailbox_.mail(id), &why)) {
        Violate("lost", "message " + Describe(mailbox_.mail(id)) + " deleted by popvault: " + why);
      }
    }
  }

  std::string Describe(const Mail& m) const {
    return "#" + std::to_string(m.id) + " (uidl \"" + m.uidl + "\", sha256 " +
           m.sha256.substr(0, 12) + "..., " + std::to_string(m.size) + " bytes)";
  }

  void Violate(const std::string& kind, const std::string& what) {
    if (violation_.empty()) {
      violation_ = kind;
      violation_what_ = what;
      violation_pass_ = totals_.passes;
    }
  }

  int Fail() {
    std::fprintf(stderr, "chaos: VIOLATION %s at step %llu (pass %llu), seed %llu: %s\n",
                 violation_.c_str(), static_cast<unsigned long long>(step_),
                 static_cast<unsigned long long>(violation_pass_),
                 static_cast<unsigned long long>(o_.seed), violation_what_.c_str());
    std::fprintf(stderr, "chaos: work directory kept: %s (ledger, stores, audit.log, pass.log)\n",
                 work_.c_str());
    Summary("FAILED");
    std::fprintf(stderr, "reproduce: scripts/chaos.sh --seed %llu --steps %llu%s\n",
                 static_cast<unsigned long long>(o_.seed), static_cast<unsigned long long>(step_),
                 o_.faults_arg.c_str());
    return 1;
  }

  void Summary(const char* verdict) {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    std::printf(
        "chaos: seed %llu %s: steps %llu, passes %llu (ok %llu), kills %llu, deletions %llu, "
        "other_deletions %llu, storage_faults %llu (torn %llu), peak_rss_mb %llu, lost=%d "
        "deleted_unverified=%d audit_missing=%d, %.1f s\n",
        static_cast<unsigned long long>(o_.seed), verdict,
        static_cast<unsigned long long>(totals_.steps),
        static_cast<unsigned long long>(totals_.passes),
        static_cast<unsigned long long>(totals_.passes_ok),
        static_cast<unsigned long long>(totals_.kills),
        static_cast<unsigned long long>(totals_.deletions),
        static_cast<unsigned long long>(totals_.other_deletions),
        static_cast<unsigned long long>(totals_.storage_faults),
        static_cast<unsigned long long>(totals_.torn),
        static_cast<unsigned long long>(totals_.max_rss_kb / 1024), violation_ == "lost",
        violation_ == "deleted_unverified", violation_ == "audit_missing", secs);
    std::fflush(stdout);
  }

  const Options& o_;
  Rng rng_;
  Mailbox mailbox_;
  std::unique_ptr<Oracle> oracle_;
  std::vector<std::pair<std::string, std::string>> stores_;  // root, name
  std::string work_;
  int listener_ = -1;
  uint16_t port_ = 0;
  uint64_t step_ = 0;
  Clock::time_point fork_time_;  // of the pass in progress
  Clock::time_point start_;
  Totals totals_;
  std::set<std::string> torn_;       // contents a torn write hit: never due
  std::vector<uint64_t> committed_;  // deleted by popvault's QUITs
  std::string violation_, violation_what_;
  uint64_t violation_pass_ = 0;
};

void Usage() {
  std::fprintf(stderr,
               "usage: popvault_chaos [--seed S] [--steps N | --minutes M] [--faults A,B,...] "
               "[--without A,B,...] [--stores 1-4] [--rss-mb MB] [--no-drain] [--keep]\n"
               "fault classes (default: all):");
  for (const std::string& c : FaultClasses::All()) std::fprintf(stderr, " %s", c.c_str());
  std::fprintf(stderr, "\n");
}

bool ParseClasses(const std::string& option, const std::string& list, std::set<std::string>* out) {
  const std::vector<std::string> all = FaultClasses::All();
  std::stringstream s(list);
  std::string name;
  while (std::getline(s, name, ',')) {
    if (name.empty()) continue;
    if (std::find(all.begin(), all.end(), name) == all.end()) {
      std::fprintf(stderr, "popvault_chaos: %s: unknown fault class '%s'\n", option.c_str(),
                   name.c_str());
      Usage();
      return false;
    }
    out->insert(name);
  }
  return true;
}

bool ParseNumber(const std::string& option, const char* text, double* out) {
  char* end = nullptr;
  *out = text ? std::strtod(text, &end) : -1;
  if (!text || *end != '\0' || *out < 0) {
    std::fprintf(stderr, "popvault_chaos: %s needs a non-negative number, got '%s'\n",
                 option.c_str(), text ? text : "");
    return false;
  }
  return true;
}

bool ParseOptions(int argc, char** argv, Options* o) {
  std::set<std::string> on, off;
  bool faults_given = false, steps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    double n = 0;
    if (a == "--seed" || a == "--steps" || a == "--minutes" || a == "--rss-mb" || a == "--stores") {
      if (!ParseNumber(a, v, &n)) return false;
      ++i;
      if (a == "--seed") o->seed = static_cast<uint64_t>(n);
      if (a == "--steps") o->steps = static_cast<uint64_t>(n), steps_given = true;
      if (a == "--minutes") o->minutes = n;
      if (a == "--rss-mb") o->rss_limit_mb = static_cast<uint64_t>(n);
      if (a == "--stores" && (n < 1 || n > 4)) {
        std::fprintf(stderr, "popvault_chaos: --stores takes 1 to 4, got %s\n", v);
        return false;
      }
      if (a == "--stores") {
        o->stores = static_cast<uint64_t>(n);
        o->faults_arg += std::string(" --stores ") + v;
      }
    } else if (a == "--faults" || a == "--without") {
      if (!v) {
        std::fprintf(stderr, "popvault_chaos: %s needs a comma-separated list of classes\n",
                     a.c_str());
        return false;
      }
      if (!ParseClasses(a, v, a == "--faults" ? &on : &off)) return false;
      faults_given = faults_given || a == "--faults";
      o->faults_arg += " " + a + " " + v;
      ++i;
    } else if (a == "--help") {
      Usage();
      std::exit(0);
    } else if (a == "--keep") {
      o->keep = true;
    } else if (a == "--no-drain") {
      o->drain = false;
      o->faults_arg += " --no-drain";
    } else {
      std::fprintf(stderr, "popvault_chaos: unknown option '%s'\n", a.c_str());
      Usage();
      return false;
    }
  }
  if (o->minutes > 0 && !steps_given) o->steps = 0;
  if (!faults_given) {
    for (const std::string& c : FaultClasses::All()) on.insert(c);
  }
  for (const std::string& c : off) on.erase(c);
  o->faults.on = on;
  return true;
}

}  // namespace
}  // namespace popvault::chaos

int main(int argc, char** argv) {
  popvault::chaos::Options options;
  if (!popvault::chaos::ParseOptions(argc, argv, &options)) return 2;
  // A closed socket must be an error, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  return popvault::chaos::Runner(options).Run();
}
