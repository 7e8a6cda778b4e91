// libFuzzer target: the fuzz input is what a POP3 server sends.
//
// Input: <mode byte> <chunk byte> <server bytes...> (tests/fuzz/README.md).
//   mode & 3 == 0  parsers: every line through ParseResponse, ErrorStatus,
//                  ParseUidlLine, ParseListLine, CapabilityName/Arguments,
//                  ApopTimestamp, Printable.
//   mode & 3 == 1  session: OpenSession over a scripted transport, then UIDL,
//                  LIST, RETR, DELE, RSET, QUIT as the mode's bits ask.
//   mode & 3 == 2  reply reader, checked byte for byte against a reference
//                  decoder written here from the RFC 1939 rules.
//   mode & 3 == 3  reply reader and parsers.
// The chunk byte cuts the server bytes into reads of varying size, so every
// reply boundary, dot and CR also lands on a read boundary.
//
// A broken invariant prints what and aborts, which libFuzzer reports as a
// crash with the input saved.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pop3/pop3_session.h"
#include "pop3/pop3_session_internal.h"
#include "pop3/protocol.h"
#include "pop3/reply_reader.h"
#include "pop3/scripted_transport.h"
#include "popvault/byte_stream.h"
#include "popvault/status.h"

namespace popvault::pop3 {
namespace {

using Code = Status::Code;

[[noreturn]] void Fail(const char* what, int line) {
  std::fprintf(stderr, "pop3_reply_fuzzer.cc:%d: invariant failed: %s\n", line, what);
  std::abort();
}

// Checked in every build type (the fuzz build defines NDEBUG).
#define FUZZ_CHECK(cond)                \
  do {                                  \
    if (!(cond)) Fail(#cond, __LINE__); \
  } while (0)

bool IsSuffix(std::string_view whole, std::string_view part) {
  return part.size() <= whole.size() && whole.substr(whole.size() - part.size()) == part;
}

bool IsPrefix(std::string_view whole, std::string_view part) {
  return part.size() <= whole.size() && whole.substr(0, part.size()) == part;
}

// Read sizes for the scripted transport. 0: everything in one read (capped
// by the reader's buffer); 1-127: pseudo-random sizes in 1..c; 128-255: in
// 1..(c-127)*64, up to 8 KiB.
std::deque<std::string> Chunk(std::string_view bytes, uint8_t c) {
  std::deque<std::string> chunks;
  if (bytes.empty()) return chunks;
  if (c == 0) {
    chunks.emplace_back(bytes);
    return chunks;
  }
  const size_t max = c < 128 ? c : static_cast<size_t>(c - 127) * 64;
  uint32_t x = 0x9e3779b9u ^ c;
  while (!bytes.empty()) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t n = std::min<size_t>(bytes.size(), 1 + x % max);
    chunks.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return chunks;
}

size_t Pending(const testing::Wire& wire) {
  size_t n = 0;
  for (const std::string& chunk : wire.chunks) n += chunk.size();
  return n;
}

// ---- parsers ---------------------------------------------------------------

void CheckParsers(std::string_view line) {
  Response response;
  if (ParseResponse(line, &response).ok()) {
    FUZZ_CHECK(IsSuffix(line, response.text));
    FUZZ_CHECK(response.code.size() <= response.text.size());
    for (char c : response.code) FUZZ_CHECK(!(c >= 'a' && c <= 'z'));
    if (!response.ok) {
      for (bool login : {false, true}) {
        Status s = ErrorStatus(response, login, "ctx");
        FUZZ_CHECK(!s.ok());
        for (char c : s.message()) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
      }
    }
  } else {
    FUZZ_CHECK(ParseResponse(line, &response).code() == Code::kProtocol);
  }

  UidlEntry uidl;
  Status s = ParseUidlLine(line, &uidl);
  if (s.ok()) {
    FUZZ_CHECK(uidl.msgno > 0);
    FUZZ_CHECK(!uidl.uidl.empty());
    FUZZ_CHECK(IsSuffix(line, uidl.uidl));
    FUZZ_CHECK(uidl.uidl.size() < line.size());
  } else {
    FUZZ_CHECK(s.code() == Code::kProtocol);
    for (char c : s.message()) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  }

  ListEntry list;
  s = ParseListLine(line, &list);
  if (s.ok()) {
    FUZZ_CHECK(list.msgno > 0);
  } else {
    FUZZ_CHECK(s.code() == Code::kProtocol);
  }

  std::string name = CapabilityName(line);
  FUZZ_CHECK(name.size() <= line.size());
  FUZZ_CHECK(name.find(' ') == std::string::npos);
  for (char c : name) FUZZ_CHECK(!(c >= 'a' && c <= 'z'));
  std::string arguments = CapabilityArguments(line);
  FUZZ_CHECK(IsSuffix(line, arguments));
  FUZZ_CHECK(arguments.empty() || arguments[0] != ' ');
  FUZZ_CHECK(name.size() + arguments.size() <= line.size());

  std::string stamp = ApopTimestamp(line);
  if (!stamp.empty()) {
    FUZZ_CHECK(stamp.front() == '<' && stamp.back() == '>');
    FUZZ_CHECK(stamp.find('@') != std::string::npos);
    FUZZ_CHECK(line.find(stamp) != std::string_view::npos);
    std::string digest = ApopDigest(stamp, "tanstaaf");
    FUZZ_CHECK(digest.size() == 32);
    FUZZ_CHECK(digest.find_first_not_of("0123456789abcdef") == std::string::npos);
  }

  std::string printable = Printable(line);
  FUZZ_CHECK(printable.size() == line.size());
  for (char c : printable) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);

  FUZZ_CHECK(IsPrefix(line, StripLineEnding(line)));
}

void FuzzParsers(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t lf = bytes.find('\n');
    size_t n = lf == std::string_view::npos ? bytes.size() : lf + 1;
    std::string_view line = bytes.substr(0, n);
    CheckParsers(StripLineEnding(line));
    CheckParsers(line);  // the parsers must not trip over a stray CR or LF either
    bytes.remove_prefix(n);
  }
}

// ---- reply reader against a reference decoder --------------------------------

// What ReadStatusLine must do with `rest`, the unread server bytes.
struct RefLine {
  Code code = Code::kOk;
  std::string line;
  size_t consumed = 0;
};

RefLine ReferenceStatusLine(std::string_view rest) {
  RefLine ref;
  size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    // Never complete: too long once kMaxLineOctets bytes have no LF, else the
    // stream ends inside the line.
    ref.code = rest.size() >= kMaxLineOctets ? Code::kProtocol : Code::kNetwork;
    return ref;
  }
  if (lf + 1 > kMaxLineOctets) {
    ref.code = Code::kProtocol;
    return ref;
  }
  ref.line.assign(rest.substr(0, lf));
  if (!ref.line.empty() && ref.line.back() == '\r') ref.line.pop_back();
  ref.consumed = lf + 1;
  return ref;
}

// What ReadMultiLine must deliver from `rest`: lines split at LF, a line that
// is "." or ".\r" ends the body, any other line loses a leading '.'. Without
// a terminator the body runs to the end of the stream (the reader then fails,
// having delivered at most a prefix of `data`).
struct RefBody {
  bool terminated = false;
  std::string data;
  size_t consumed = 0;
};

RefBody ReferenceBody(std::string_view rest) {
  RefBody ref;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t lf = rest.find('\n', pos);
    size_t end = lf == std::string_view::npos ? rest.size() : lf + 1;
    std::string_view line = rest.substr(pos, end - pos);
    pos = end;
    if (line == ".\n" || line == ".\r\n") {
      ref.terminated = true;
      ref.consumed = pos;
      return ref;
    }
    if (!line.empty() && line[0] == '.') line.remove_prefix(1);
    ref.data.append(line);
  }
  ref.consumed = pos;
  return ref;
}

// Keeps what it is given, and fails (kIOError) on the Append that completes
// "SINKFAIL" in its data, to check that a sink error comes back unchanged.
class CheckingSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    FUZZ_CHECK(!failed_);  // the producer must stop after a sink error
    FUZZ_CHECK(n > 0);     // no empty spans
    FUZZ_CHECK(n <= ReplyReader::kBufferSize);
    const size_t from = data_.size() >= 7 ? data_.size() - 7 : 0;
    data_.append(data, n);
    ++appends_;
    if (data_.find("SINKFAIL", from) != std::string::npos) {
      failed_ = true;
      return Status::IOError("sink failed on purpose");
    }
    return Status::OK();
  }
  const std::string& data() const { return data_; }
  bool failed() const { return failed_; }

 private:
  std::string data_;
  size_t appends_ = 0;
  bool failed_ = false;
};

void FuzzReader(std::string_view stream, uint8_t multi_line_mask, uint8_t chunk) {
  auto wire = std::make_shared<testing::Wire>();
  wire->chunks = Chunk(stream, chunk);
  testing::ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  size_t pos = 0;  // where the reference decoder stands in `stream`
  for (unsigned op = 0;; ++op) {
    std::string line;
    Status s = reader.ReadStatusLine(&line);
    RefLine ref = ReferenceStatusLine(stream.substr(pos));
    FUZZ_CHECK(s.code() == ref.code);
    if (!s.ok()) return;
    FUZZ_CHECK(line == ref.line);
    FUZZ_CHECK(line.size() < kMaxLineOctets);
    pos += ref.consumed;

    Response response;
    if (!ParseResponse(line, &response).ok() || !response.ok) continue;
    if (response.text.starts_with("Begin TLS")) {
      // As after STLS: the reader forgets everything the transport has
      // delivered so far; reading resumes at the transport's next byte.
      reader.DiscardBuffered();
      FUZZ_CHECK(stream.size() - Pending(*wire) >= pos);
      pos = stream.size() - Pending(*wire);
      continue;
    }
    if (((multi_line_mask >> (op % 6)) & 1) == 0) continue;

    CheckingSink sink;
    s = reader.ReadMultiLine(sink);
    RefBody body = ReferenceBody(stream.substr(pos));
    if (s.ok()) {
      FUZZ_CHECK(!sink.failed());
      FUZZ_CHECK(body.terminated);
      FUZZ_CHECK(sink.data() == body.data);
      FUZZ_CHECK(sink.data().size() < body.consumed);  // unstuffing never adds bytes
      pos += body.consumed;
      continue;
    }
    FUZZ_CHECK(IsPrefix(body.data, sink.data()));
    if (sink.failed()) {
      FUZZ_CHECK(s.code() == Code::kIOError);
      FUZZ_CHECK(s.message() == "sink failed on purpose");
    } else {
      FUZZ_CHECK(!body.terminated);
      FUZZ_CHECK(s.code() == Code::kNetwork);
    }
    return;
  }
}

// ---- whole session -----------------------------------------------------------

class CountingSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    (void)data;
    FUZZ_CHECK(n > 0);
    bytes_ += n;
    return Status::OK();
  }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_ = 0;
};

// RetrEach/DeleEach (pipelining) when the Pop3Session being built has them;
// otherwise RETR 1-3 and DELE 1 one at a time. Either way as many replies as
// the seeds' transcripts hold: three RETR, one more RETR, three DELE. A template, so that the
// requires-expressions can test for members and the fuzzer builds against the
// session API with and without pipelining.
template <typename Session>
void RetrieveAndDelete(Session& session, const std::vector<ListEntry>& listing, bool dele,
                       size_t stream_size, const std::function<void(const Status&)>& after) {
  if constexpr (requires(Session & s, std::vector<ListEntry> m, std::vector<uint32_t> n,
                         std::function<ByteSink&(size_t)> b, std::function<Status(size_t)> e) {
                  s.RetrEach(m, b, e);
                  s.DeleEach(n);
                  s.max_in_flight();
                }) {
    std::vector<ListEntry> messages(listing.begin(),
                                    listing.begin() + std::min<size_t>(listing.size(), 8));
    if (messages.empty()) messages = {{1, 100}, {2, 100000}, {3, 1}};
    std::vector<CountingSink> sinks(messages.size());
    size_t begun = 0, ended = 0;
    const Status stop = Status::IOError("fuzz: end() refuses an empty message");
    Status s = session.RetrEach(
        messages,
        [&](size_t i) -> ByteSink& {
          FUZZ_CHECK(i == begun && i == ended && i < messages.size());  // in order, once each
          ++begun;
          return sinks[i];
        },
        [&](size_t i) {
          FUZZ_CHECK(i + 1 == begun && i == ended);
          ++ended;
          FUZZ_CHECK(sinks[i].bytes() <= stream_size);
          return sinks[i].bytes() == 0 ? stop : Status::OK();
        });
    if (s.ok()) FUZZ_CHECK(ended == messages.size());
    // An error from end() is returned as is, after the replies already asked
    // for were read: the session stays usable.
    if (!s.ok() && s.message() == stop.message()) FUZZ_CHECK(!session.broken());
    after(s);
    if (session.capabilities().count("PIPELINING") == 0) FUZZ_CHECK(session.max_in_flight() <= 1);
    CountingSink again;  // and once on its own
    after(session.Retr(messages[0].msgno, again));
    FUZZ_CHECK(again.bytes() <= stream_size);
    if (dele) {
      std::vector<uint32_t> msgnos;
      for (const ListEntry& m : messages) msgnos.push_back(m.msgno);
      after(session.DeleEach(msgnos));
    }
  } else {
    for (uint32_t msgno = 1; msgno <= 3; ++msgno) {
      CountingSink sink;
      after(session.Retr(msgno, sink));
      FUZZ_CHECK(sink.bytes() <= stream_size);
    }
    if (dele) after(session.Dele(1));
  }
}

// Mode bits 2-7: bit 2 STLS, bits 3-4 auth (kAuto, kUser, kApop, kAuto),
// bit 5 the TLS handshake fails, bit 6 DELE + RSET, bit 7 QUIT (else Abort).
void FuzzSession(std::string_view stream, uint8_t mode, uint8_t chunk) {
  auto wire = std::make_shared<testing::Wire>();
  wire->chunks = Chunk(stream, chunk);
  if (mode & 0x20) wire->tls_result = Status::Tls("fuzz: handshake failed");

  Pop3Options options;
  options.host = "pop.example";
  options.port = 110;
  options.tls = (mode & 0x04) ? TlsMode::kStartTls : TlsMode::kNone;
  options.user = "alice";
  options.password = "s3cret";
  const AuthMethod methods[] = {AuthMethod::kAuto, AuthMethod::kUser, AuthMethod::kApop,
                                AuthMethod::kAuto};
  options.auth = methods[(mode >> 3) & 3];
  options.allow_plaintext_auth = true;

  // RFC 1939 §6: nothing but a successful QUIT commits DELEs, and we send
  // QUIT only when asked to, on a session that has not broken.
  bool quit_allowed = false;
  auto check_no_quit = [&] {
    if (!quit_allowed) FUZZ_CHECK(wire->written.find("QUIT") == std::string::npos);
  };

  std::unique_ptr<Pop3Session> session;
  Status s = OpenSession(options, std::make_unique<testing::ScriptedTransport>(wire), &session);
  if (!s.ok()) {
    FUZZ_CHECK(session == nullptr);
    FUZZ_CHECK(wire->closed);
    check_no_quit();
    return;
  }
  FUZZ_CHECK(session != nullptr);
  for (const std::string& name : session->capabilities()) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.find(' ') == std::string::npos);
    for (char c : name) FUZZ_CHECK(!(c >= 'a' && c <= 'z'));
    std::string argument = session->CapabilityArgument(name);
    FUZZ_CHECK(argument.empty() || argument[0] != ' ');
  }

  // Some errors (-ERR to UIDL, a refusing end() in RetrEach) leave the
  // session usable; once it is broken, or aborted, every call is refused.
  bool refused = false;
  auto after = [&](const Status& status) {
    if (refused) FUZZ_CHECK(status.code() == Code::kAborted);
    if (!status.ok() && session->broken()) refused = true;
    if (session->broken()) FUZZ_CHECK(!status.ok());
    check_no_quit();
  };

  std::vector<UidlEntry> uidl;
  s = session->Uidl(&uidl);
  after(s);
  for (const UidlEntry& entry : uidl) FUZZ_CHECK(entry.msgno > 0 && !entry.uidl.empty());
  FUZZ_CHECK(uidl.size() <= stream.size());

  std::vector<ListEntry> list;
  s = session->List(&list);
  after(s);
  for (const ListEntry& entry : list) FUZZ_CHECK(entry.msgno > 0);

  RetrieveAndDelete(*session, list, (mode & 0x40) != 0, stream.size(), after);
  if (mode & 0x40) after(session->Rset());

  if ((mode & 0x80) == 0) {
    session->Abort();
    FUZZ_CHECK(wire->closed);
    refused = true;
    after(session->Rset());
  } else {
    quit_allowed = !refused;
    s = session->Quit();
    after(s);
    // QUIT ends the connection whatever the reply; a broken session refuses
    // to send it (and is dropped below).
    if (quit_allowed) FUZZ_CHECK(wire->closed);
    if (!quit_allowed) FUZZ_CHECK(s.code() == Code::kAborted);
  }
  session.reset();
  FUZZ_CHECK(wire->closed);  // dropped, never left open
}

}  // namespace
}  // namespace popvault::pop3

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace popvault::pop3;
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t chunk = data[1];
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (mode & 3) {
    case 0:
      FuzzParsers(stream);
      break;
    case 1:
      FuzzSession(stream, mode, chunk);
      break;
    case 2:
      FuzzReader(stream, mode >> 2, chunk);
      break;
    case 3:
      FuzzReader(stream, mode >> 2, chunk);
      FuzzParsers(stream);
      break;
  }
  return 0;
}
