#include "pop3/reply_reader.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "pop3/protocol.h"
#include "scripted_transport.h"

using popvault::ByteSink;
using popvault::Status;
using namespace popvault::pop3;
using namespace popvault::pop3::testing;
using namespace std::string_literals;

namespace {

struct MultiLineResult {
  Status status;
  std::string body;
  std::string next_line;  // the status line after the terminator
};

MultiLineResult ReadMultiLineFrom(std::deque<std::string> chunks) {
  auto wire = std::make_shared<Wire>();
  wire->chunks = std::move(chunks);
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  StringSink sink;
  MultiLineResult result;
  result.status = reader.ReadMultiLine(sink);
  result.body = sink.data();
  if (result.status.ok()) REQUIRE(reader.ReadStatusLine(&result.next_line).ok());
  return result;
}

// Feeds `wire_body` followed by "+OK next\r\n" split at every single offset and
// every pair of offsets, and checks the delivered bytes each time.
void CheckAllSplits(const std::string& wire_body, const std::string& expected) {
  const std::string input = wire_body + "+OK next\r\n";
  auto check = [&](std::vector<size_t> cuts) {
    MultiLineResult r = ReadMultiLineFrom(SplitAt(input, cuts));
    INFO("cuts at " << Catch::Detail::stringify(cuts));
    REQUIRE(r.status.ok());
    REQUIRE(r.body == expected);
    REQUIRE(r.next_line == "+OK next");
  };
  for (size_t i = 0; i <= input.size(); ++i) {
    check({i});
    for (size_t j = i + 1; j < input.size(); ++j) check({i, j});
  }
  // One byte per read.
  std::vector<size_t> every;
  for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
  check(every);
}

}  // namespace

TEST_CASE("multi-line: empty body is a lone dot", "[reader]") { CheckAllSplits(".\r\n", ""); }

TEST_CASE("multi-line: plain lines are delivered with their CRLF", "[reader]") {
  CheckAllSplits("Subject: hi\r\n\r\nbody\r\n.\r\n", "Subject: hi\r\n\r\nbody\r\n");
}

TEST_CASE("multi-line: dot-stuffed lines lose exactly one dot", "[reader]") {
  CheckAllSplits("..\r\n.\r\n", ".\r\n");
  CheckAllSplits("...\r\n.\r\n", "..\r\n");
  CheckAllSplits(".data\r\n.\r\n", "data\r\n");
  CheckAllSplits("a\r\n..b\r\n.. \r\n.\r\n", "a\r\n.b\r\n. \r\n");
  // A dot that does not start a line is data.
  CheckAllSplits("a.\r\nb.c\r\n .\r\n.\r\n", "a.\r\nb.c\r\n .\r\n");
}

TEST_CASE("multi-line: dot followed by CR and data is a stuffed line", "[reader]") {
  CheckAllSplits(".\rX\r\n.\r\n", "\rX\r\n");
  CheckAllSplits(".\r\r\n.\r\n", "\r\r\n");
  CheckAllSplits(".\r.\r\n.\r\n", "\r.\r\n");
}

TEST_CASE("multi-line: CR-only bytes and NULs are data", "[reader]") {
  const std::string body = "a\rb\r\r\n\0x\r\n\r\r\r\n"s + '\0' + "\r\n"s;
  CheckAllSplits(body + ".\r\n", body);
  // A CR before the dot does not put the dot at a line start.
  CheckAllSplits("\r.\r\n.\r\n", "\r.\r\n");
}

TEST_CASE("multi-line: bare LF line endings end the reply too", "[reader]") {
  CheckAllSplits("a\n..b\n.\n", "a\n.b\n");
  CheckAllSplits(".\n", "");
  CheckAllSplits("a\r\n.\n", "a\r\n");
}

TEST_CASE("multi-line: a line longer than 998 octets passes intact", "[reader]") {
  const std::string line = std::string(5000, 'x') + "\r\n";
  MultiLineResult r = ReadMultiLineFrom({line + ".\r\n+OK next\r\n"});
  REQUIRE(r.status.ok());
  CHECK(r.body == line);
  // Terminator split across reads right after a long line.
  r = ReadMultiLineFrom({line + ".", "\r", "\n+OK next\r\n"});
  REQUIRE(r.status.ok());
  CHECK(r.body == line);
}

TEST_CASE("multi-line: end of stream before the terminator is kNetwork", "[reader]") {
  for (const std::string& wire :
       {""s, "abc"s, "abc\r\n"s, "abc.\r\n"s, "abc\r\n."s, "abc\r\n.\r"s, "x\r\n..\r\n"s}) {
    INFO(wire);
    CHECK(ReadMultiLineFrom({wire}).status.code() == Status::Code::kNetwork);
  }
}

namespace {

// Produces `size` bytes of 'x' then a CRLF and the terminator, without
// holding them in memory.
class LongLineTransport : public Transport {
 public:
  explicit LongLineTransport(size_t size) : remaining_(size) {}
  Status Read(char* buf, size_t cap, size_t* n, ReadWait) override {
    if (remaining_ > 0) {
      *n = std::min(cap, remaining_);
      std::fill(buf, buf + *n, 'x');
      remaining_ -= *n;
    } else {
      *n = std::min(cap, tail_.size());
      std::copy(tail_.begin(), tail_.begin() + *n, buf);
      tail_.erase(0, *n);
    }
    return Status::OK();
  }
  Status Write(const char*, size_t) override { return Status::OK(); }
  Status StartTls() override { return Status::OK(); }
  bool secure() const override { return false; }
  void Close() override {}

 private:
  size_t remaining_;
  std::string tail_ = "\r\n.\r\n";
};

class CountingSink : public ByteSink {
 public:
  Status Append(const char* data, size_t n) override {
    total += n;
    largest = std::max(largest, n);
    last = n > 0 ? data[n - 1] : last;
    return Status::OK();
  }
  size_t total = 0;
  size_t largest = 0;
  char last = 0;
};

class FailingSink : public ByteSink {
 public:
  Status Append(const char*, size_t) override { return Status::IOError("disk full"); }
};

}  // namespace

TEST_CASE("multi-line: a 10 MB single line streams in bounded chunks", "[reader]") {
  const size_t size = 10 * 1024 * 1024;
  LongLineTransport transport(size);
  ReplyReader reader(&transport);
  CountingSink sink;
  REQUIRE(reader.ReadMultiLine(sink).ok());
  CHECK(sink.total == size + 2);
  CHECK(sink.largest <= ReplyReader::kBufferSize);
  CHECK(sink.last == '\n');
}

TEST_CASE("multi-line: a sink error stops the read and is returned", "[reader]") {
  auto wire = std::make_shared<Wire>();
  wire->chunks = {"data\r\n.\r\n"};
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  FailingSink sink;
  CHECK(reader.ReadMultiLine(sink).code() == Status::Code::kIOError);
}

TEST_CASE("status line: CRLF or LF stripped, split anywhere", "[reader]") {
  const std::string input = "+OK ready\r\n-ERR no\n+OK\r\n";
  for (size_t i = 0; i <= input.size(); ++i) {
    auto wire = std::make_shared<Wire>();
    wire->chunks = SplitAt(input, {i});
    ScriptedTransport transport(wire);
    ReplyReader reader(&transport);
    std::string line;
    REQUIRE(reader.ReadStatusLine(&line).ok());
    CHECK(line == "+OK ready");
    REQUIRE(reader.ReadStatusLine(&line).ok());
    CHECK(line == "-ERR no");
    REQUIRE(reader.ReadStatusLine(&line).ok());
    CHECK(line == "+OK");
    CHECK(reader.ReadStatusLine(&line).code() == Status::Code::kNetwork);
  }
}

TEST_CASE("status line: longer than the bound is kProtocol", "[reader]") {
  const std::string at_bound = "+OK " + std::string(kMaxLineOctets - 6, 'a') + "\r\n";
  REQUIRE(at_bound.size() == kMaxLineOctets);
  const std::string over = "+OK " + std::string(kMaxLineOctets - 5, 'a') + "\r\n";
  for (size_t cut : {size_t{0}, size_t{1}, kMaxLineOctets - 1, kMaxLineOctets}) {
    auto wire = std::make_shared<Wire>();
    wire->chunks = SplitAt(at_bound + over, {cut});
    ScriptedTransport transport(wire);
    ReplyReader reader(&transport);
    std::string line;
    REQUIRE(reader.ReadStatusLine(&line).ok());
    CHECK(line.size() == kMaxLineOctets - 2);
    CHECK(reader.ReadStatusLine(&line).code() == Status::Code::kProtocol);
  }
}

TEST_CASE("status line: an endless line fails without reading it all", "[reader]") {
  LongLineTransport transport(100 * 1024 * 1024);
  ReplyReader reader(&transport);
  std::string line;
  CHECK(reader.ReadStatusLine(&line).code() == Status::Code::kProtocol);
  CHECK(line.empty());
}

TEST_CASE("DiscardBuffered drops bytes read ahead", "[reader]") {
  auto wire = std::make_shared<Wire>();
  wire->chunks = {"+OK begin TLS\r\n+OK injected\r\n", "+OK after\r\n"};
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  std::string line;
  REQUIRE(reader.ReadStatusLine(&line).ok());
  CHECK(line == "+OK begin TLS");
  reader.DiscardBuffered();
  REQUIRE(reader.ReadStatusLine(&line).ok());
  CHECK(line == "+OK after");
}

TEST_CASE("waits: only the first byte of a reply waits with the reply timeout", "[reader]") {
  auto wire = std::make_shared<Wire>();
  // Greeting whole; a status line in pieces; a multi-line reply whose body
  // arrives later; a status line that arrived with the body's last read.
  wire->chunks = {"+OK ready\r\n",  "+O",       "K\r", "\n", "+OK 2 messages\r\n", "1 a\r\n",
                  "2 b\r\n.\r\n+O", "K bye\r\n"};
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  std::string line;
  REQUIRE(reader.ReadStatusLine(&line).ok());
  CHECK(wire->waits == std::vector<ReadWait>{ReadWait::kReply});
  wire->waits.clear();
  REQUIRE(reader.ReadStatusLine(&line).ok());
  CHECK(line == "+OK");
  CHECK(wire->waits == std::vector<ReadWait>{ReadWait::kReply, ReadWait::kIdle, ReadWait::kIdle});
  wire->waits.clear();
  REQUIRE(reader.ReadStatusLine(&line).ok());
  StringSink sink;
  REQUIRE(reader.ReadMultiLine(sink).ok());
  CHECK(sink.data() == "1 a\r\n2 b\r\n");
  CHECK(wire->waits == std::vector<ReadWait>{ReadWait::kReply, ReadWait::kIdle, ReadWait::kIdle});
  wire->waits.clear();
  // "+O" was already buffered: the reply has started.
  REQUIRE(reader.ReadStatusLine(&line).ok());
  CHECK(line == "+OK bye");
  CHECK(wire->waits == std::vector<ReadWait>{ReadWait::kIdle});
}

TEST_CASE("waits: a body read right after its status line is an idle wait", "[reader]") {
  auto wire = std::make_shared<Wire>();
  wire->chunks = {"+OK\r\n", "x\r\n.\r\n"};
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  std::string line;
  REQUIRE(reader.ReadStatusLine(&line).ok());
  StringSink sink;
  REQUIRE(reader.ReadMultiLine(sink).ok());
  CHECK(wire->waits == std::vector<ReadWait>{ReadWait::kReply, ReadWait::kIdle});
}

TEST_CASE("waits: a transport timeout is returned as is", "[reader]") {
  auto wire = std::make_shared<Wire>();
  wire->chunks = {"+OK\r\npart"};
  wire->read_error = Status::Timeout("reply stalled: nothing received for idle_timeout (60 s)");
  ScriptedTransport transport(wire);
  ReplyReader reader(&transport);
  std::string line;
  REQUIRE(reader.ReadStatusLine(&line).ok());
  StringSink sink;
  const Status status = reader.ReadMultiLine(sink);
  CHECK(status.code() == Status::Code::kTimeout);
  CHECK_THAT(status.ToString(), Catch::Matchers::Contains("idle_timeout"));
  CHECK(sink.data() == "part");
}
