// The chaos harness's POP3 server: a maildrop that outlives sessions, and one
// session at a time over a loopback socket, driven by the harness's poll()
// loop (single-threaded: the harness forks popvault passes from it).
//
// RFC 1939 semantics: a session works on a snapshot of the maildrop taken at
// login; DELE only marks; QUIT commits the marks; any other end of the
// session (drop, kill, disconnect) rolls them back. Faults come from the
// session's SessionPlan, drawn per command in command order, so a seed gives
// the same session for the same commands.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chaos_common.h"

namespace popvault::chaos {

struct Mail {
  enum class Fate { kOnServer, kDeletedByUs, kDeletedByOther };
  uint64_t id = 0;
  std::string uidl;
  // CRLF lines, ending in CRLF: what RETR must yield exactly. Freed once the
  // message leaves the server (a long run would hold every message ever, in
  // the harness and in every pass's RSS); size and sha256 stay to judge the
  // archived copies.
  std::string bytes;
  uint64_t size = 0;
  std::string sha256;
  Fate fate = Fate::kOnServer;
  // A pass that listed it ended OK: it was archived byte-exact then and
  // must stay so, whoever deletes it (Oracle).
  bool due = false;
};

// Every message ever offered, and the live maildrop.
class Mailbox {
 public:
  explicit Mailbox(uint64_t seed) : seed_(seed) {}
  // A new message at the end of the maildrop, `uidl` or a fresh one.
  Mail& Deliver(Rng& rng, const std::string& uidl = "");
  // Removes it from the maildrop with this fate, and frees its bytes.
  void Remove(uint64_t id, Mail::Fate fate);

  Mail& mail(uint64_t id) { return mails_[id]; }
  const std::vector<Mail>& all() const { return mails_; }
  const std::vector<uint64_t>& live() const { return live_; }
  // UIDLs no message on the server has, but one had (for uidl-reuse).
  const std::vector<std::string>& gone_uidls() const { return gone_uidls_; }

 private:
  uint64_t seed_;
  std::vector<Mail> mails_;
  std::vector<uint64_t> live_;  // maildrop order
  std::vector<std::string> gone_uidls_;
};

// What goes wrong in one session. -1 / 0: nothing.
struct SessionPlan {
  uint64_t seed = 0;          // per-command draws (chunk sizes, -ERR texts)
  bool pipelining = true;     // announce PIPELINING
  int err_at_command = -1;    // the n-th command (1-based) gets -ERR
  int64_t drop_at_byte = -1;  // close once this many reply bytes went out
  int stall_at_command = -1;  // replies pause stall_ms from the n-th command on
  int stall_ms = 0;
  bool slow = false;             // replies in small pieces; commands read late
  int kill_at_command = -1;      // on receiving the n-th command, before replying
  int64_t kill_at_byte = -1;     // once this many reply bytes went out (not in QUIT's reply)
  bool kill_after_quit = false;  // QUIT commits, then the client dies before the +OK
  bool lose_quit_ok = false;     // QUIT commits, then the connection drops before the +OK
  uint64_t omit_uidl_of = 0;     // msgno UIDL leaves out (LIST still shows it)
  std::map<uint64_t, uint64_t> list_lies;  // msgno -> LIST size claimed
  int other_delete_at_command = -1;        // another client deletes a message then
  int deliver_at_command = -1;             // new mail arrives then (invisible until next login)
  int kill_after_ms = -1;                  // SIGKILL the client this long after it started
};

// The harness's side of a session: what the oracle must see as it happens.
struct SessionEvents {
  std::function<void(const Mail&)> dele;       // a DELE arrived for this message
  std::function<void(uint64_t id)> committed;  // QUIT deleted it
  std::function<void()> kill;                  // SIGKILL the client now
  std::function<void(Rng&)> other_delete;      // another client deletes something
  std::function<void(Rng&)> deliver;           // new mail mid-session
};

class ModelSession {
 public:
  ModelSession(int fd, Mailbox& mailbox, SessionPlan plan, SessionEvents events);
  ~ModelSession();
  ModelSession(const ModelSession&) = delete;
  ModelSession& operator=(const ModelSession&) = delete;

  // For poll(): the events to wait for, and how long at most (-1: no limit).
  short PollEvents() const;
  int PollTimeoutMs() const;
  // After poll() reported `revents` on fd (0 on a time-out).
  void Service(short revents);
  // The connection is closed.
  bool done() const { return fd_ < 0; }
  // Closes the connection (the client died): marks roll back.
  void Close();

  int fd() const { return fd_; }
  const std::vector<uint64_t>& snapshot() const { return snapshot_; }

 private:
  using Clock = std::chrono::steady_clock;
  void ReadCommands();
  void Handle(const std::string& line);
  void Reply(const std::string& text) { out_ += text; }
  void Flush();
  void Err(const std::string& why);
  void Login();
  void List(const std::string& arg);
  void Uidl(const std::string& arg);
  void Retr(const std::string& arg);
  void Dele(const std::string& arg);
  void Quit();
  // The message behind a message-number argument (not marked), or nullptr.
  Mail* Lookup(const std::string& arg, uint64_t* msgno);
  // The same, sending -ERR for nullptr.
  Mail* Message(const std::string& arg, uint64_t* msgno = nullptr);
  uint64_t ListSize(uint64_t msgno) const;

  int fd_;
  Mailbox& mailbox_;
  SessionPlan plan_;
  SessionEvents events_;
  Rng rng_;
  std::vector<uint64_t> snapshot_;  // msgno - 1 -> id, from login on
  std::vector<bool> marked_;        // DELE'd in this session
  bool logged_in_ = false;
  bool quit_committed_ = false;
  bool close_after_flush_ = false;
  int commands_ = 0;
  int64_t sent_ = 0;
  std::string in_;
  std::string out_;
  Clock::time_point hold_until_{};  // stall: nothing is sent before
  Clock::time_point read_after_{};  // slow reader: nothing is read before
};

}  // namespace popvault::chaos
