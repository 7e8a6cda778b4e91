#include "pop3/pop3_session.h"

#include <cstring>
#include <functional>
#include <map>
#include <string_view>
#include <utility>

#include "pop3/pop3_session_internal.h"
#include "pop3/protocol.h"
#include "pop3/reply_reader.h"
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

class SessionImpl final : public Pop3Session {
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
      POPVAULT_RETURN_IF_ERROR(Authenticate());
      // Servers may announce more after login (Gmail: TOP, PIPELINING).
      return Capa();
    });
  }

  const std::set<std::string>& capabilities() const override { return capabilities_; }

  std::string CapabilityArgument(const std::string& name) const override {
    auto it = capability_arguments_.find(name);
    return it == capability_arguments_.end() ? "" : it->second;
  }

  Status Uidl(std::vector<UidlEntry>* entries) override {
    return Run([&] {
      std::vector<UidlEntry> result;
      POPVAULT_RETURN_IF_ERROR(Command("UIDL", "UIDL", false));
      POPVAULT_RETURN_IF_ERROR(ReadLines("UIDL", [&](std::string_view line) {
        UidlEntry entry;
        POPVAULT_RETURN_IF_ERROR(ParseUidlLine(line, &entry));
        result.push_back(std::move(entry));
        return Status::OK();
      }));
      *entries = std::move(result);
      return Status::OK();
    });
  }

  Status List(std::vector<ListEntry>* entries) override {
    return Run([&] {
      std::vector<ListEntry> result;
      POPVAULT_RETURN_IF_ERROR(Command("LIST", "LIST", false));
      POPVAULT_RETURN_IF_ERROR(ReadLines("LIST", [&](std::string_view line) {
        ListEntry entry;
        POPVAULT_RETURN_IF_ERROR(ParseListLine(line, &entry));
        result.push_back(entry);
        return Status::OK();
      }));
      *entries = std::move(result);
      return Status::OK();
    });
  }

  Status Retr(uint32_t msgno, ByteSink& sink) override {
    return Run([&] {
      const std::string command = "RETR " + std::to_string(msgno);
      POPVAULT_RETURN_IF_ERROR(Command(command, command, false));
      return reader_.ReadMultiLine(sink).WithContext(where_ + ": " + command);
    });
  }

  Status Dele(uint32_t msgno) override {
    return Run([&] {
      const std::string command = "DELE " + std::to_string(msgno);
      return Command(command, command, false);
    });
  }

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
    Status status = body();
    if (!status.ok() && state_ == State::kOpen) {
      state_ = State::kBroken;
      first_error_ = status;
    }
    return status;
  }

  // Sends `command` and reads its status line into *response. Only local,
  // transport and protocol failures are errors; -ERR is left to the caller.
  // `shown` stands for the command in messages, so secrets stay out of them.
  Status Exchange(const std::string& command, const std::string& shown, Response* response) {
    const std::string context = where_ + ": " + shown;
    if (command.find_first_of("\r\n") != std::string::npos) {
      return Status::InvalidArgument(context + ": line break in a command argument");
    }
    const std::string line = command + "\r\n";
    POPVAULT_RETURN_IF_ERROR(transport_->Write(line.data(), line.size()).WithContext(context));
    return ReadResponse(shown, response);
  }

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
    capabilities_.clear();
    capability_arguments_.clear();
    Response response;
    POPVAULT_RETURN_IF_ERROR(Exchange("CAPA", "CAPA", &response));
    // -ERR: an RFC 1939-only server, which has no capabilities to list.
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
    if (options_.auth == AuthMethod::kApop) return Apop();
    POPVAULT_RETURN_IF_ERROR(Command("USER " + options_.user, "USER " + options_.user, true));
    return Command("PASS " + options_.password, "PASS ****", true);
  }

  // Only on request (kAuto never picks it): MD5 over the password is weak.
  Status Apop() {
    const std::string timestamp = ApopTimestamp(greeting_);
    if (timestamp.empty()) {
      return Status::NotSupported(where_ + ": APOP requested but the greeting has no timestamp");
    }
    return Command("APOP " + options_.user + " " + ApopDigest(timestamp, options_.password),
                   "APOP " + options_.user + " ****", true);
  }

  const Pop3Options options_;
  const std::string where_;
  std::unique_ptr<Transport> transport_;
  ReplyReader reader_;
  std::set<std::string> capabilities_;
  std::map<std::string, std::string> capability_arguments_;  // name -> arguments
  std::string greeting_;
  State state_ = State::kOpen;
  Status first_error_;
};

}  // namespace

Status OpenSession(const Pop3Options& options, std::unique_ptr<Transport> transport,
                   std::unique_ptr<Pop3Session>* session) {
  auto impl = std::make_unique<SessionImpl>(options, std::move(transport));
  POPVAULT_RETURN_IF_ERROR(impl->Start());
  *session = std::move(impl);
  return Status::OK();
}

}  // namespace pop3

Status Pop3Session::Open(const Pop3Options& options, std::unique_ptr<Pop3Session>* session) {
  std::unique_ptr<pop3::Transport> transport;
  POPVAULT_RETURN_IF_ERROR(pop3::ConnectSocketTransport(options, &transport));
  return pop3::OpenSession(options, std::move(transport), session);
}

}  // namespace popvault
