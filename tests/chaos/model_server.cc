#include "model_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/sha256.h"

namespace popvault::chaos {
namespace {

// Mostly small mail, some large, a few past the 1 MiB the writer keeps in
// memory (its spill file).
size_t MessageSize(Rng& rng) {
  const uint64_t r = rng.Below(1000);
  if (r < 750) return rng.Between(120, 4000);
  if (r < 975) return rng.Between(4000, 40000);
  if (r < 998) return rng.Between(40000, 300000);
  return rng.Between(1100000, 1300000);
}

// CRLF lines ending in CRLF (so RETR can carry them byte-exact), with lines
// that need dot-stuffing: ".", "..", ".x".
std::string MessageBytes(uint64_t seed, uint64_t id, Rng& rng) {
  std::string m = "Message-ID: <" + std::to_string(id) + "." + std::to_string(seed) +
                  "@chaos.invalid>\r\nFrom: chaos <chaos@chaos.invalid>\r\nSubject: chaos " +
                  std::to_string(id) + "\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n";
  const size_t size = MessageSize(rng);
  static const char kChars[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_=+/!?<>\t";
  while (m.size() < size) {
    const uint64_t kind = rng.Below(100);
    if (kind < 2) {
      m += ".\r\n";
    } else if (kind < 3) {
      m += "..\r\n";
    } else {
      if (kind < 8) m += '.';
      const size_t len = rng.Below(100);
      for (size_t i = 0; i < len; ++i) m += kChars[rng.Below(sizeof kChars - 1)];
      m += "\r\n";
    }
  }
  return m;
}

// RFC 1939 UIDL characters (0x21-0x7E), some that storage keys must escape.
std::string FreshUidl(uint64_t id, Rng& rng) {
  static const char kChars[] = "abcdefXYZ0123456789/%._-+=!~";
  std::string u = std::to_string(id) + "-";
  const size_t extra = rng.Below(rng.Percent(10) ? 60 : 12);
  for (size_t i = 0; i < extra; ++i) u += kChars[rng.Below(sizeof kChars - 1)];
  return u;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Mail& Mailbox::Deliver(Rng& rng, const std::string& uidl) {
  Mail m;
  m.id = mails_.size();
  m.uidl = uidl.empty() ? FreshUidl(m.id, rng) : uidl;
  std::erase(gone_uidls_, m.uidl);
  m.bytes = MessageBytes(seed_, m.id, rng);
  m.size = m.bytes.size();
  m.sha256 = Sha256::Hex(m.bytes);
  mails_.push_back(std::move(m));
  live_.push_back(mails_.back().id);
  return mails_.back();
}

void Mailbox::Remove(uint64_t id, Mail::Fate fate) {
  Mail& m = mails_.at(id);
  if (m.fate != Mail::Fate::kOnServer) return;
  m.fate = fate;
  std::erase(live_, id);
  std::string().swap(m.bytes);
  // Reusable once no message on the server has it (uidl-reuse), so that
  // reuse never makes a repeated UIDL.
  if (std::none_of(live_.begin(), live_.end(),
                   [&](uint64_t l) { return mails_[l].uidl == m.uidl; })) {
    gone_uidls_.push_back(m.uidl);
  }
}

ModelSession::ModelSession(int fd, Mailbox& mailbox, SessionPlan plan, SessionEvents events)
    : fd_(fd),
      mailbox_(mailbox),
      plan_(std::move(plan)),
      events_(std::move(events)),
      rng_(plan_.seed) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  Reply("+OK chaos POP3 ready\r\n");
}

ModelSession::~ModelSession() { Close(); }

void ModelSession::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

short ModelSession::PollEvents() const {
  if (done()) return 0;
  const auto now = Clock::now();
  short events = 0;
  if (now >= read_after_ && !close_after_flush_) events |= POLLIN;
  if (!out_.empty() && now >= hold_until_) events |= POLLOUT;
  return events;
}

int ModelSession::PollTimeoutMs() const {
  const auto now = Clock::now();
  auto ms = [&](Clock::time_point t) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() +
                            1);
  };
  int timeout = -1;
  if (!out_.empty() && now < hold_until_) timeout = ms(hold_until_);
  if (now < read_after_)
    timeout = timeout < 0 ? ms(read_after_) : std::min(timeout, ms(read_after_));
  return timeout;
}

void ModelSession::Service(short revents) {
  if (done()) return;
  if (revents & (POLLIN | POLLHUP | POLLERR)) ReadCommands();
  // Commands a slow read left in the buffer are handled once its delay ends.
  size_t eol;
  while (!done() && Clock::now() >= read_after_ && !close_after_flush_ &&
         (eol = in_.find('\n')) != std::string::npos) {
    std::string line = in_.substr(0, eol);
    in_.erase(0, eol + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Handle(line);
    if (plan_.slow && rng_.Percent(20)) {
      read_after_ = Clock::now() + std::chrono::milliseconds(rng_.Between(1, 20));
    }
  }
  if (!done()) Flush();
}

void ModelSession::ReadCommands() {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    Close();  // the client closed or died: the session's marks roll back
    return;
  }
}

void ModelSession::Flush() {
  while (!done() && !out_.empty() && Clock::now() >= hold_until_) {
    size_t n = out_.size();
    if (plan_.slow) n = std::min<size_t>(n, rng_.Between(1, 600));
    // Byte-offset faults stop short of QUIT's reply: losing that one is a
    // class of its own (lose_quit_ok, kill_after_quit).
    if (!quit_committed_) {
      for (int64_t at : {plan_.drop_at_byte, plan_.kill_at_byte}) {
        if (at >= sent_) n = std::min<size_t>(n, static_cast<size_t>(at - sent_));
      }
      if (sent_ == plan_.kill_at_byte) {
        events_.kill();
        Close();
        return;
      }
      if (sent_ == plan_.drop_at_byte) {
        Close();
        return;
      }
    }
    const ssize_t w = ::send(fd_, out_.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) Close();
      return;
    }
    out_.erase(0, static_cast<size_t>(w));
    sent_ += w;
    // Pieces the client must read separately: a pause now and then.
    if (plan_.slow && rng_.Percent(10)) {
      hold_until_ = Clock::now() + std::chrono::milliseconds(1);
    }
  }
  if (out_.empty() && close_after_flush_) Close();
}

void ModelSession::Err(const std::string& why) {
  static const char* kCodes[] = {"", "[IN-USE] ", "[SYS/TEMP] ", "[SYS/PERM] ", "[LOGIN-DELAY] "};
  Reply(std::string("-ERR ") + kCodes[rng_.Below(5)] + why + "\r\n");
}

void ModelSession::Handle(const std::string& line) {
  ++commands_;
  const std::string verb = Upper(line.substr(0, line.find(' ')));
  const std::string arg =
      line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
  if (commands_ == plan_.kill_at_command && verb != "QUIT") {
    events_.kill();
    Close();
    return;
  }
  if (commands_ == plan_.other_delete_at_command) events_.other_delete(rng_);
  if (commands_ == plan_.deliver_at_command) events_.deliver(rng_);
  if (commands_ == plan_.stall_at_command) {
    hold_until_ = Clock::now() + std::chrono::milliseconds(plan_.stall_ms);
  }
  // A -ERR for QUIT would need its own semantics (which marks survive);
  // every other command may fail.
  if (commands_ == plan_.err_at_command && verb != "QUIT") {
    // The DELE was sent all the same: the oracle judges it.
    if (verb == "DELE") {
      if (Mail* m = Lookup(arg, nullptr)) events_.dele(*m);
    }
    Err("injected failure of " + verb);
    return;
  }
  if (verb == "CAPA") {
    Reply(std::string("+OK capabilities\r\nUSER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\n") +
          (plan_.pipelining ? "PIPELINING\r\n" : "") + ".\r\n");
  } else if (verb == "USER") {
    Reply("+OK send PASS\r\n");
  } else if (verb == "PASS") {
    Login();
  } else if (verb == "QUIT") {
    Quit();
  } else if (!logged_in_) {
    Reply("-ERR log in first\r\n");
  } else if (verb == "STAT") {
    uint64_t n = 0, octets = 0;
    for (uint64_t i = 1; i <= snapshot_.size(); ++i) {
      if (!marked_[i - 1]) ++n, octets += ListSize(i);
    }
    Reply("+OK " + std::to_string(n) + " " + std::to_string(octets) + "\r\n");
  } else if (verb == "LIST") {
    List(arg);
  } else if (verb == "UIDL") {
    Uidl(arg);
  } else if (verb == "RETR") {
    Retr(arg);
  } else if (verb == "DELE") {
    Dele(arg);
  } else if (verb == "RSET") {
    std::fill(marked_.begin(), marked_.end(), false);
    Reply("+OK\r\n");
  } else if (verb == "NOOP") {
    Reply("+OK\r\n");
  } else {
    Reply("-ERR unknown command\r\n");
  }
}

void ModelSession::Login() {
  snapshot_ = mailbox_.live();
  marked_.assign(snapshot_.size(), false);
  logged_in_ = true;
  Reply("+OK " + std::to_string(snapshot_.size()) + " messages\r\n");
}

uint64_t ModelSession::ListSize(uint64_t msgno) const {
  auto lie = plan_.list_lies.find(msgno);
  if (lie != plan_.list_lies.end()) return lie->second;
  return mailbox_.mail(snapshot_[msgno - 1]).size;
}

Mail* ModelSession::Lookup(const std::string& arg, uint64_t* msgno) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(arg.c_str(), &end, 10);
  if (arg.empty() || *end != '\0' || n < 1 || n > snapshot_.size() || marked_[n - 1]) {
    return nullptr;
  }
  if (msgno) *msgno = n;
  return &mailbox_.mail(snapshot_[n - 1]);
}

Mail* ModelSession::Message(const std::string& arg, uint64_t* msgno) {
  Mail* m = Lookup(arg, msgno);
  if (!m) Reply("-ERR no such message\r\n");
  return m;
}

void ModelSession::List(const std::string& arg) {
  if (!arg.empty()) {
    uint64_t msgno = 0;
    if (Message(arg, &msgno)) {
      Reply("+OK " + std::to_string(msgno) + " " + std::to_string(ListSize(msgno)) + "\r\n");
    }
    return;
  }
  std::string r = "+OK scan listing follows\r\n";
  for (uint64_t i = 1; i <= snapshot_.size(); ++i) {
    if (!marked_[i - 1]) r += std::to_string(i) + " " + std::to_string(ListSize(i)) + "\r\n";
  }
  Reply(r + ".\r\n");
}

void ModelSession::Uidl(const std::string& arg) {
  if (!arg.empty()) {
    uint64_t msgno = 0;
    if (Mail* m = Message(arg, &msgno))
      Reply("+OK " + std::to_string(msgno) + " " + m->uidl + "\r\n");
    return;
  }
  std::string r = "+OK unique-id listing follows\r\n";
  for (uint64_t i = 1; i <= snapshot_.size(); ++i) {
    if (marked_[i - 1] || i == plan_.omit_uidl_of) continue;
    r += std::to_string(i) + " " + mailbox_.mail(snapshot_[i - 1]).uidl + "\r\n";
  }
  Reply(r + ".\r\n");
}

void ModelSession::Retr(const std::string& arg) {
  uint64_t msgno = 0;
  Mail* m = Message(arg, &msgno);
  if (!m) return;
  if (m->fate != Mail::Fate::kOnServer) {
    Reply("-ERR [SYS/TEMP] message was removed by another session\r\n");
    return;
  }
  std::string r = "+OK " + std::to_string(ListSize(msgno)) + " octets\r\n";
  r.reserve(r.size() + m->bytes.size() + m->bytes.size() / 50 + 3);
  size_t pos = 0;
  while (pos < m->bytes.size()) {
    const size_t eol = m->bytes.find("\r\n", pos) + 2;
    if (m->bytes[pos] == '.') r += '.';
    r.append(m->bytes, pos, eol - pos);
    pos = eol;
  }
  Reply(r + ".\r\n");
}

void ModelSession::Dele(const std::string& arg) {
  uint64_t msgno = 0;
  Mail* m = Message(arg, &msgno);
  if (!m) return;
  events_.dele(*m);
  if (m->fate != Mail::Fate::kOnServer) {
    Reply("-ERR [SYS/TEMP] message was removed by another session\r\n");
    return;
  }
  marked_[msgno - 1] = true;
  Reply("+OK marked\r\n");
}

void ModelSession::Quit() {
  if (logged_in_) {
    for (uint64_t i = 1; i <= snapshot_.size(); ++i) {
      if (!marked_[i - 1] || mailbox_.mail(snapshot_[i - 1]).fate != Mail::Fate::kOnServer) {
        continue;
      }
      mailbox_.Remove(snapshot_[i - 1], Mail::Fate::kDeletedByUs);
      events_.committed(snapshot_[i - 1]);
    }
    quit_committed_ = true;
    if (plan_.kill_after_quit) {
      events_.kill();
      Close();
      return;
    }
    if (plan_.lose_quit_ok) {
      Close();
      return;
    }
  }
  Reply("+OK bye\r\n");
  close_after_flush_ = true;
}

}  // namespace popvault::chaos
