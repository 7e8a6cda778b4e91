#include "pop3/pop3_session.h"

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "pop3/pop3_session_internal.h"
#include "pop3/protocol.h"
#include "pop3/reply_reader.h"
#include "pop3/sasl.h"
#include "pop3/socket_transport.h"

namespace popvault {
namespace pop3 {
namespace {

// A hostile server must not make a listing grow without bound; real maildrops
// are far smaller.
constexpr size_t kMaxListingLines = 10'000'000;

// Splits a multi-line body into lines (each at most kMaxLineOctets) and hands
// each one, line ending stripped, to `on_line`. The reader only ends a body
// at a line start, so no partial line is left over at the end.
class LineSink : public ByteSink {
 public:
  explicit LineSink(std::function<Status(std::string_view)> on_line)
      : on_line_(std::move(on_line)) {}

  Status Append(const char* data, size_t n) override {
    while (n > 0) {
      const char* lf = static_cast<const char*>(std::memchr(data, '\n', n));
      size_t take = lf != nullptr ? static_cast<size_t>(lf - data) + 1 : n;
      if (line_.size() + take > kMaxLineOctets) {
        return Status::Protocol("reply line longer than " + std::to_string(kMaxLineOctets) +
                                " octets");
      }
      line_.append(data, take);
      data += take;
      n -= take;
      if (lf == nullptr) break;
      if (++lines_ > kMaxListingLines) return Status::Protocol("too many lines in the reply");
      Status status = on_line_(StripLineEnding(line_));
      line_.clear();
      if (!status.ok()) return status;
    }
    return Status::OK();
  }

 private:
  std::function<Status(std::string_view)> on_line_;
  std::string line_;
  size_t lines_ = 0;
};

// Passes a RETR body on, failing once it grows past `limit` octets: a
// hostile or broken server cannot fill the spool disk.
class LimitSink : public ByteSink {
 public:
  LimitSink(ByteSink& next, uint64_t limit) : next_(next), limit_(limit) {}
  Status Append(const char* data, size_t n) override {
    seen_ += n;
    if (seen_ > limit_) {
      return Status::TooLarge("message larger than max_message_size (" + std::to_string(limit_) +
                              " octets)");
    }
    return next_.Append(data, n);
  }

 private:
  ByteSink& next_;
  const uint64_t limit_;
  uint64_t seen_ = 0;
};

// Reads replies nobody wants any more (RETRs sent ahead of a stop).
class DiscardSink : public ByteSink {
 public:
  Status Append(const char*, size_t) override { return Status::OK(); }
};

class SessionImpl final : public Pop3Session, private AuthChannel {
 public:
  SessionImpl(const Pop3Options& options, std::unique_ptr<Transport> transport)
      : options_(options),
        where_(options.host + ":" + std::to_string(options.port)),
        transport_(std::move(transport)),
        reader_(transport_.get()) {}

  // RFC 1939 §6: without QUIT the server must not delete anything.
  ~SessionImpl() override { transport_->Close(); }

  // The Open sequence after connecting; see OpenSession.
  Status Start() {
    return Run([this] {
      POPVAULT_RETURN_IF_ERROR(Greeting());
      POPVAULT_RETURN_IF_ERROR(Capa());
      if (options_.tls == TlsMode::kStartTls) POPVAULT_RETURN_IF_ERROR(UpgradeToTls());
      // PIPELINING announced before login lets the commands after it go out
      // with the login's last line (SendLast).
      if (Window() > 1) {
        behind_login_ = {"CAPA"};
        if (options_.prefetch_listing) behind_login_.insert(behind_login_.end(), {"LIST", "UIDL"});
      }
      POPVAULT_RETURN_IF_ERROR(Authenticate());
      // Servers may announce more after login (Gmail: TOP, PIPELINING).
      if (behind_login_.empty()) return Capa();
      if (!behind_login_sent_) POPVAULT_RETURN_IF_ERROR(Send(behind_login_));
      POPVAULT_RETURN_IF_ERROR(ReadCapa());
      if (behind_login_.size() > 1) PrefetchListing();
      return Status::OK();
    });
  }

  const std::set<std::string>& capabilities() const override { return capabilities_; }

  std::string CapabilityArgument(const std::string& name) const override {
    auto it = capability_arguments_.find(name);
    return it == capability_arguments_.end() ? "" : it->second;
  }

  Status Uidl(std::vector<UidlEntry>* entries) override {
    return Run([&] {
      POPVAULT_RETURN_IF_ERROR(Send({"UIDL"}));
      return ReadUidl(entries);
    });
  }

  Status List(std::vector<ListEntry>* entries) override {
    return Run([&] {
      POPVAULT_RETURN_IF_ERROR(Send({"LIST"}));
      return ReadList(entries);
    });
  }

  Status Listing(std::vector<ListEntry>* sizes, std::vector<UidlEntry>* uidls) override {
    if (prefetched_) {
      Prefetched p = std::move(*prefetched_);
      prefetched_.reset();
      if (!p.list.ok()) return p.list;
      *sizes = std::move(p.sizes);
      if (p.uidl.ok()) *uidls = std::move(p.uidls);
      return p.uidl;
    }
    if (Window() == 1) return Pop3Session::Listing(sizes, uidls);
    return Run([&] {
      POPVAULT_RETURN_IF_ERROR(Send({"LIST", "UIDL"}));
      POPVAULT_RETURN_IF_ERROR(ReadList(sizes));
      return ReadUidl(uidls);
    });
  }

  Status Retr(uint32_t msgno, ByteSink& sink) override {
    return Run([&] {
      POPVAULT_RETURN_IF_ERROR(Send({"RETR " + std::to_string(msgno)}));
      return ReadRetr(msgno, sink);
    });
  }

  Status RetrEach(const std::vector<ListEntry>& messages,
                  const std::function<ByteSink&(size_t)>& begin,
                  const std::function<Status(size_t)>& end) override {
    return Run([&] {
      size_t sent = 0;
      uint64_t sent_octets = 0;  // LIST octets of the RETRs sent but not read
      Status write_error;        // after it, only replies already asked for are read
      for (size_t next = 0; next < messages.size(); ++next) {
        std::vector<std::string> batch;
        const size_t first = sent;
        const uint64_t first_octets = sent_octets;
        while (write_error.ok() && sent < messages.size() &&
               (sent == next || (sent - next < Window() &&
                                 sent_octets + messages[sent].octets <= kMaxInFlightOctets))) {
          batch.push_back("RETR " + std::to_string(messages[sent].msgno));
          sent_octets += messages[sent].octets;
          ++sent;
        }
        if (Status w = Send(batch); !w.ok()) {
          // A peer that reset the connection may still have answered what
          // it read before: keep those messages, then report the error.
          write_error = w;
          sent = first;
          sent_octets = first_octets;
        }
        if (next == sent) return write_error;
        NoteInFlight(sent - next);
        POPVAULT_RETURN_IF_ERROR(ReadRetr(messages[next].msgno, begin(next)));
        sent_octets -= messages[next].octets;
        Status stop = end(next);
        if (stop.ok()) continue;
        for (size_t i = next + 1; i < sent; ++i) {
          DiscardSink discard;
          POPVAULT_RETURN_IF_ERROR(ReadRetr(messages[i].msgno, discard));
        }
        keep_open_ = write_error.ok();  // every reply asked for was read
        return write_error.ok() ? stop : write_error;
      }
      return write_error;
    });
  }

  Status Dele(uint32_t msgno) override { return DeleEach({msgno}); }

  Status DeleEach(const std::vector<uint32_t>& msgnos) override {
    return Run([&] {
      size_t sent = 0;
      for (size_t next = 0; next < msgnos.size(); ++next) {
        std::vector<std::string> batch;
        while (sent < msgnos.size() && (sent == next || sent - next < Window())) {
          batch.push_back("DELE " + std::to_string(msgnos[sent++]));
        }
        POPVAULT_RETURN_IF_ERROR(Send(batch));
        NoteInFlight(sent - next);
        const std::string shown = "DELE " + std::to_string(msgnos[next]);
        Response response;
        POPVAULT_RETURN_IF_ERROR(ReadResponse(shown, &response));
        if (!response.ok) return ErrorStatus(response, false, where_ + ": " + shown);
      }
      return Status::OK();
    });
  }

  size_t max_in_flight() const override { return max_in_flight_; }

  Status Rset() override {
    return Run([&] { return Command("RSET", "RSET", false); });
  }

  Status Quit() override {
    return Run([&] {
      Status status = Command("QUIT", "QUIT", false);
      // Whatever the reply, the server ends the session after QUIT.
      transport_->Close();
      if (status.ok()) state_ = State::kClosed;
      return status;
    });
  }

  void Abort() override {
    transport_->Close();
    if (state_ == State::kOpen) state_ = State::kClosed;
  }

  bool broken() const override { return state_ == State::kBroken; }

 private:
  // AuthChannel, for SaslAuthenticate.
  Status Send(const std::string& line, const std::string& shown) override {
    return Write(line, shown);
  }
  Status SendLast(const std::string& line, const std::string& shown) override {
    std::string behind;
    for (const std::string& c : behind_login_) behind += c + "\r\n";
    behind_login_sent_ = true;
    return Write(line, shown, behind);
  }
  Status ReadLine(std::string* line) override {
    return reader_.ReadStatusLine(line);  // SaslAuthenticate adds the context
  }

  enum class State { kOpen, kBroken, kClosed };

  // Runs one public operation: refuses when the session is not open, and
  // marks it broken on any error, since the position in the reply stream is
  // then unknown and only dropping the connection is safe.
  Status Run(const std::function<Status()>& body) {
    if (state_ == State::kBroken) {
      return Status::Aborted(where_ + ": session unusable after an earlier error (" +
                             first_error_.ToString() + ")");
    }
    if (state_ == State::kClosed) return Status::Aborted(where_ + ": session closed");
    keep_open_ = false;
    Status status = body();
    if (!status.ok() && !keep_open_ && state_ == State::kOpen) {
      state_ = State::kBroken;
      first_error_ = status;
    }
    return status;
  }

  // Sends `command` and reads its status line into *response. Only local,
  // transport and protocol failures are errors; -ERR is left to the caller.
  // `shown` stands for the command in messages, so secrets stay out of them.
  Status Exchange(const std::string& command, const std::string& shown, Response* response) {
    POPVAULT_RETURN_IF_ERROR(Write(command, shown));
    return ReadResponse(shown, response);
  }

  // Writes `command` and CRLF, followed in the same write by `behind`
  // (complete command lines, pipelined).
  Status Write(const std::string& command, const std::string& shown, std::string_view behind = {}) {
    const std::string context = where_ + ": " + shown;
    if (command.find_first_of("\r\n") != std::string::npos) {
      return Status::InvalidArgument(context + ": line break in a command argument");
    }
    std::string line = command + "\r\n";
    line += behind;
    return transport_->Write(line.data(), line.size()).WithContext(context);
  }

  // Sends commands without secrets in one write (one segment when
  // pipelining, RFC 2449 §6.6).
  Status Send(const std::vector<std::string>& commands) {
    if (commands.empty()) return Status::OK();
    std::string lines;
    for (const std::string& c : commands) lines += c + "\r\n";
    return transport_->Write(lines.data(), lines.size()).WithContext(where_ + ": " + commands[0]);
  }

  // The reply to UIDL. A response code ([SYS/TEMP], [IN-USE], ...) says why
  // it failed; only a bare -ERR means the server has no UIDL at all.
  Status ReadUidl(std::vector<UidlEntry>* entries) {
    Response response;
    POPVAULT_RETURN_IF_ERROR(ReadResponse("UIDL", &response));
    if (!response.ok && !response.code.empty()) {
      return ErrorStatus(response, false, where_ + ": UIDL");
    }
    if (!response.ok) {
      keep_open_ = true;  // a whole reply was read: the stream is in step
      return Status::NotSupported(where_ + ": UIDL: server replied \"-ERR " +
                                  Printable(response.text) + "\"");
    }
    std::vector<UidlEntry> result;
    POPVAULT_RETURN_IF_ERROR(ReadLines("UIDL", [&](std::string_view line) {
      UidlEntry entry;
      POPVAULT_RETURN_IF_ERROR(ParseUidlLine(line, &entry));
      result.push_back(std::move(entry));
      return Status::OK();
    }));
    *entries = std::move(result);
    return Status::OK();
  }

  // The reply to LIST.
  Status ReadList(std::vector<ListEntry>* entries) {
    Response response;
    POPVAULT_RETURN_IF_ERROR(ReadResponse("LIST", &response));
    if (!response.ok) return ErrorStatus(response, false, where_ + ": LIST");
    std::vector<ListEntry> result;
    POPVAULT_RETURN_IF_ERROR(ReadLines("LIST", [&](std::string_view line) {
      ListEntry entry;
      POPVAULT_RETURN_IF_ERROR(ParseListLine(line, &entry));
      result.push_back(entry);
      return Status::OK();
    }));
    *entries = std::move(result);
    return Status::OK();
  }

  // Reads a RETR reply (status line and body) into `sink`, within
  // max_message_size.
  Status ReadRetr(uint32_t msgno, ByteSink& sink) {
    const std::string shown = "RETR " + std::to_string(msgno);
    Response response;
    POPVAULT_RETURN_IF_ERROR(ReadResponse(shown, &response));
    if (!response.ok) return ErrorStatus(response, false, where_ + ": " + shown);
    LimitSink limited(sink, options_.max_message_size);
    return reader_.ReadMultiLine(limited).WithContext(where_ + ": " + shown);
  }

  size_t Window() const {
    return options_.pipelining && capabilities_.count("PIPELINING") ? kMaxInFlight : 1;
  }

  void NoteInFlight(size_t n) { max_in_flight_ = std::max(max_in_flight_, n); }

  Status ReadResponse(const std::string& shown, Response* response) {
    std::string line;
    Status status = reader_.ReadStatusLine(&line);
    if (status.ok()) status = ParseResponse(line, response);
    return status.WithContext(where_ + ": " + shown);
  }

  // Exchange, with -ERR mapped to an error. `login` selects the mapping for
  // USER, PASS and APOP.
  Status Command(const std::string& command, const std::string& shown, bool login) {
    Response response;
    POPVAULT_RETURN_IF_ERROR(Exchange(command, shown, &response));
    if (!response.ok) return ErrorStatus(response, login, where_ + ": " + shown);
    return Status::OK();
  }

  Status ReadLines(const std::string& shown, std::function<Status(std::string_view)> on_line) {
    LineSink sink(std::move(on_line));
    return reader_.ReadMultiLine(sink).WithContext(where_ + ": " + shown);
  }

  Status Greeting() {
    Response response;
    POPVAULT_RETURN_IF_ERROR(ReadResponse("greeting", &response));
    if (!response.ok) return ErrorStatus(response, false, where_ + ": greeting");
    greeting_ = std::move(response.text);
    return Status::OK();
  }

  Status Capa() {
    POPVAULT_RETURN_IF_ERROR(Send({"CAPA"}));
    return ReadCapa();
  }

  Status ReadCapa() {
    capabilities_.clear();
    capability_arguments_.clear();
    Response response;
    POPVAULT_RETURN_IF_ERROR(ReadResponse("CAPA", &response));
    // -ERR: an RFC 1939-only server, which has no capabilities to list.
    capa_supported_ = response.ok;
    if (!response.ok) return Status::OK();
    return ReadLines("CAPA", [this](std::string_view line) {
      std::string name = CapabilityName(line);
      if (name.empty()) return Status::OK();
      capability_arguments_[name] = CapabilityArguments(line);
      capabilities_.insert(std::move(name));
      return Status::OK();
    });
  }

  // RFC 2595 §4. No fallback to plaintext: the user asked for TLS.
  Status UpgradeToTls() {
    if (capabilities_.count("STLS") == 0) {
      return Status::NotSupported(where_ + ": tls is starttls but the server does not offer STLS");
    }
    Response response;
    POPVAULT_RETURN_IF_ERROR(Exchange("STLS", "STLS", &response));
    if (!response.ok) {
      return Status::Tls(where_ + ": STLS: server replied \"-ERR " + Printable(response.text) +
                         "\"");
    }
    POPVAULT_RETURN_IF_ERROR(transport_->StartTls().WithContext(where_ + ": STLS"));
    // Bytes that arrived before the handshake could have been injected by a
    // man in the middle; they are not replies to anything sent over TLS.
    reader_.DiscardBuffered();
    return Capa();
  }

  Status Authenticate() {
    if (!transport_->secure() && !options_.allow_plaintext_auth) {
      return Status::Security(where_ +
                              ": refusing to send credentials over an unencrypted connection "
                              "(allow_plaintext_auth is off)");
    }
    AuthMethod method = AuthMethod::kAuto;
    POPVAULT_RETURN_IF_ERROR(ChooseAuthMethod(options_, SaslMechanisms(), UserOffered(),
                                              !ApopTimestamp(greeting_).empty(), &method)
                                 .WithContext(where_));
    std::string secret;
    POPVAULT_RETURN_IF_ERROR(FetchSecret(options_, &secret).WithContext(where_));
    if (method == AuthMethod::kUser) {
      POPVAULT_RETURN_IF_ERROR(Command("USER " + options_.user, "USER " + options_.user, true));
      return LastLoginCommand("PASS " + secret, "PASS ****");
    }
    if (method == AuthMethod::kApop) {
      return LastLoginCommand(
          "APOP " + options_.user + " " + ApopDigest(ApopTimestamp(greeting_), secret),
          "APOP " + options_.user + " ****");
    }
    return SaslAuthenticate(*this, method, options_.user, secret, where_);
  }

  // PASS or APOP: the commands behind the login go in the same write.
  Status LastLoginCommand(const std::string& command, const std::string& shown) {
    Response response;
    POPVAULT_RETURN_IF_ERROR(SendLast(command, shown));
    POPVAULT_RETURN_IF_ERROR(ReadResponse(shown, &response));
    if (!response.ok) return ErrorStatus(response, true, where_ + ": " + shown);
    return Status::OK();
  }

  // The replies to the LIST and UIDL sent behind the login, kept for the
  // first Listing(), errors included. Unless the stream is still in step
  // (a bare -ERR to UIDL), an error breaks the session now.
  void PrefetchListing() {
    Prefetched p;
    keep_open_ = false;
    p.list = ReadList(&p.sizes);
    if (p.list.ok()) p.uidl = ReadUidl(&p.uidls);
    const Status& failed = p.list.ok() ? p.uidl : p.list;
    if (!failed.ok() && !keep_open_) {
      state_ = State::kBroken;
      first_error_ = failed;
    }
    keep_open_ = false;
    prefetched_ = std::move(p);
  }

  // The mechanisms of CAPA's "SASL" line, upper-cased.
  std::set<std::string> SaslMechanisms() const {
    std::set<std::string> names;
    std::string rest = CapabilityArgument("SASL");
    for (size_t at = 0; (at = rest.find_first_not_of(' ', at)) != std::string::npos;) {
      size_t stop = std::min(rest.find(' ', at), rest.size());
      names.insert(CapabilityName(rest.substr(at, stop - at)));
      at = stop;
    }
    return names;
  }

  // RFC 2449: USER is announced in CAPA; a server without CAPA predates it.
  bool UserOffered() const { return !capa_supported_ || capabilities_.count("USER") > 0; }

  // What Open read for the first Listing() (options.prefetch_listing).
  struct Prefetched {
    Status list;
    Status uidl;
    std::vector<ListEntry> sizes;
    std::vector<UidlEntry> uidls;
  };

  const Pop3Options options_;
  const std::string where_;
  std::unique_ptr<Transport> transport_;
  ReplyReader reader_;
  std::set<std::string> capabilities_;
  std::map<std::string, std::string> capability_arguments_;  // name -> arguments
  std::string greeting_;
  State state_ = State::kOpen;
  Status first_error_;
  bool capa_supported_ = false;
  bool keep_open_ = false;  // set by an operation whose error left the stream in step
  std::vector<std::string> behind_login_;  // pipelined behind the login's last line
  bool behind_login_sent_ = false;
  std::optional<Prefetched> prefetched_;
  size_t max_in_flight_ = 0;
};

}  // namespace

Status OpenSession(const Pop3Options& options, std::unique_ptr<Transport> transport,
                   std::unique_ptr<Pop3Session>* session, Pop3Session::OpenInfo* info) {
  auto impl = std::make_unique<SessionImpl>(options, std::move(transport));
  Status status = impl->Start();
  if (info != nullptr) info->login_delay = impl->CapabilityArgument("LOGIN-DELAY");
  POPVAULT_RETURN_IF_ERROR(status);
  *session = std::move(impl);
  return Status::OK();
}

}  // namespace pop3

Status Pop3Session::RetrEach(const std::vector<ListEntry>& messages,
                             const std::function<ByteSink&(size_t)>& begin,
                             const std::function<Status(size_t)>& end) {
  for (size_t i = 0; i < messages.size(); ++i) {
    POPVAULT_RETURN_IF_ERROR(Retr(messages[i].msgno, begin(i)));
    POPVAULT_RETURN_IF_ERROR(end(i));
  }
  return Status::OK();
}

Status Pop3Session::Listing(std::vector<ListEntry>* sizes, std::vector<UidlEntry>* uidls) {
  POPVAULT_RETURN_IF_ERROR(List(sizes));
  return Uidl(uidls);
}

Status Pop3Session::DeleEach(const std::vector<uint32_t>& msgnos) {
  for (uint32_t msgno : msgnos) POPVAULT_RETURN_IF_ERROR(Dele(msgno));
  return Status::OK();
}

Status Pop3Session::Open(const Pop3Options& options, std::unique_ptr<Pop3Session>* session,
                         OpenInfo* info) {
  std::unique_ptr<pop3::Transport> transport;
  POPVAULT_RETURN_IF_ERROR(pop3::ConnectSocketTransport(options, &transport));
  return pop3::OpenSession(options, std::move(transport), session, info);
}

}  // namespace popvault
