#include "archive/message_writer.h"

#include <unistd.h>
#include <zstd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"

namespace popvault {
namespace {

using testing::ReadAll;
using testing::TempDir;

std::string Decompress(const std::string& frame) {
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  // Frames of streamed messages do not record their size: decompress by stream then.
  std::string out;
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  size_t r = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    r = ZSTD_decompressStream(dctx, &o, &in);
    REQUIRE(!ZSTD_isError(r));
    out.append(buf.data(), o.pos);
  }
  ZSTD_freeDCtx(dctx);
  CHECK(r == 0);
  if (size != ZSTD_CONTENTSIZE_UNKNOWN) {
    CHECK(size == out.size());
    std::string oneshot(out.size(), '\0');
    const size_t n = ZSTD_decompress(oneshot.data(), oneshot.size(), frame.data(), frame.size());
    REQUIRE(!ZSTD_isError(n));
    CHECK(oneshot == out);
  }
  return out;
}

struct Written {
  std::string sha256;
  uint64_t size = 0;
  MessageHeaders headers;
  std::vector<std::string> frames;  // per level asked for
};

// Feeds `message` in pieces of `step` bytes and collects the results.
Written Write(const std::string& message, std::vector<int> levels, size_t step = 65536,
              const std::string& spool_dir = "/tmp") {
  MessageWriter w(levels, spool_dir);
  for (size_t i = 0; i < message.size(); i += step) {
    REQUIRE(w.Append(message.data() + i, std::min(step, message.size() - i)).ok());
  }
  REQUIRE(w.Finish().ok());
  Written out{w.sha256_hex(), w.size(), w.headers(), {}};
  for (int level : levels) {
    std::string frame;
    REQUIRE(ReadAll(w.compressed(level), &frame).ok());
    CHECK(frame.size() == w.compressed(level).Size());
    CHECK(ZSTD_findFrameCompressedSize(frame.data(), frame.size()) == frame.size());
    out.frames.push_back(frame);
  }
  return out;
}

MessageHeaders Headers(const std::string& message, size_t step = 65536) {
  return Write(message, {1}, step).headers;
}

// Open descriptors whose target lies in `dir` (the spool files).
int FilesOpenIn(const std::string& dir) {
  int count = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    char target[4096];
    const ssize_t n = ::readlink(fd.path().c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, n).starts_with(dir + "/")) ++count;
  }
  return count;
}

TEST_CASE("MessageWriter SHA-256 matches published test vectors") {
  CHECK(Write("", {3}).sha256 ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Write("abc", {3}).sha256 ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const Written million = Write(std::string(1000000, 'a'), {3}, 4099);
  CHECK(million.sha256 == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(million.size == 1000000);
  CHECK(Decompress(million.frames[0]) == std::string(1000000, 'a'));
}

TEST_CASE("MessageWriter output decompresses byte-exact whatever the append sizes") {
  std::string text;
  for (int i = 0; text.size() < 700000; ++i) text += "Line " + std::to_string(i * 7919) + "\r\n";
  const std::string random = testing::RandomBytes(300000, 7);
  // Around the size up to which the writer compresses in one shot.
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{262143}, size_t{262144}, size_t{262145}, size_t{700000}}) {
    for (const std::string* source : std::vector<const std::string*>{&text, &random}) {
      const std::string message = source->substr(0, size);
      for (size_t step : {size_t{1} << 20, size_t{4096}, size_t{977}}) {
        INFO("size " << message.size() << " step " << step);
        const Written w = Write(message, {3}, step);
        CHECK(w.size == message.size());
        CHECK(Decompress(w.frames[0]) == message);
        CHECK(w.sha256 == Write(message, {3}, 1 << 20).sha256);
      }
    }
  }
}

TEST_CASE("MessageWriter writes one frame per distinct level") {
  std::string message;
  for (int i = 0; i < 20000; ++i)
    message += "Subject: repeated text " + std::to_string(i % 97) + "\n";
  const Written w = Write(message, {1, 19, 3, 19, -5});
  REQUIRE(w.frames.size() == 5);
  for (const std::string& frame : w.frames) CHECK(Decompress(frame) == message);
  CHECK(w.frames[1] == w.frames[3]);
  CHECK(w.frames[1].size() < w.frames[4].size());  // level 19 beats level -5 on text

  MessageWriter writer({3}, "/tmp");
  std::string out;
  CHECK(ReadAll(writer.compressed(3), &out).code() == Status::Code::kInvalidArgument);
  REQUIRE(writer.Append("x", 1).ok());
  REQUIRE(writer.Finish().ok());
  CHECK(ReadAll(writer.compressed(3), &out).ok());
  CHECK(ReadAll(writer.compressed(9), &out).code() == Status::Code::kInvalidArgument);
  CHECK(writer.Append("y", 1).code() == Status::Code::kInvalidArgument);
  CHECK(writer.size() == 1);
}

TEST_CASE("MessageWriter captures the four header fields") {
  SECTION("CRLF, case-insensitive names, first occurrence, body ignored") {
    const MessageHeaders h = Headers(
        "Received: by x\r\nmessage-ID:  <a@b>  \r\nDATE: Fri, 27 Nov 2026\r\n"
        "From: Alice <a@b>\r\nSubject: first\r\nSubject: second\r\n\r\n"
        "From: body <no@no>\r\n");
    CHECK(h.message_id == "<a@b>");
    CHECK(h.date == "Fri, 27 Nov 2026");
    CHECK(h.from == "Alice <a@b>");
    CHECK(h.subject == "first");
  }
  SECTION("folded lines are unfolded") {
    const MessageHeaders h =
        Headers("Subject: part one\r\n\tpart two\r\n  part three\r\nFrom:\r\n x@y\r\n\r\nbody");
    CHECK(h.subject == "part one\tpart two  part three");
    CHECK(h.from == "x@y");
  }
  SECTION("missing fields are empty; fields after the blank line do not count") {
    const MessageHeaders h = Headers("From: a@b\r\n\r\nSubject: in body\r\nDate: no\r\n");
    CHECK(h.from == "a@b");
    CHECK(h.subject.empty());
    CHECK(h.date.empty());
    CHECK(h.message_id.empty());
    CHECK(Headers("\r\nSubject: after empty first line\r\n").subject.empty());
    CHECK(Headers("").subject.empty());
  }
  SECTION("LF-only and CR-only line endings") {
    const MessageHeaders lf = Headers("Subject: lf\n folded\nFrom: f\n\nDate: body\n");
    CHECK(lf.subject == "lf folded");
    CHECK(lf.from == "f");
    CHECK(lf.date.empty());
    const MessageHeaders cr = Headers("Subject: cr\r folded\rFrom: f\r\rDate: body\r");
    CHECK(cr.subject == "cr folded");
    CHECK(cr.from == "f");
    CHECK(cr.date.empty());
  }
  SECTION("a message without a blank line is all header") {
    const MessageHeaders h = Headers("From: only@header\r\nSubject: no body");
    CHECK(h.from == "only@header");
    CHECK(h.subject == "no body");
  }
  SECTION("byte-by-byte appends give the same result as one append") {
    const std::string m = "Subject: split\r\n\tacross\r\nFrom: x\r\n\r\nSubject: body\r\n";
    const MessageHeaders one = Headers(m), bytes = Headers(m, 1);
    CHECK(bytes.subject == "split\tacross");
    CHECK(bytes.subject == one.subject);
    CHECK(bytes.from == one.from);
  }
  SECTION("values are trimmed, made valid UTF-8 and capped at 998 octets") {
    const MessageHeaders h = Headers("Subject :\t caf\xe9 \t\r\nFrom: " + std::string(5000, 'x') +
                                     "\r\nDate: " + std::string(600, '\xff') + "\r\n\r\n");
    CHECK(h.subject == "caf\xEF\xBF\xBD");
    CHECK(h.from == std::string(998, 'x'));
    CHECK(h.date.size() == 996);  // 332 replacement characters of 3 octets
  }
  SECTION("the header scan is bounded") {
    std::string m;
    while (m.size() < (300 << 10)) m += "X-Pad: " + std::string(70, 'p') + "\r\n";
    CHECK(Headers("From: early\r\n" + m + "Subject: late\r\n\r\n").from == "early");
    CHECK(Headers("From: early\r\n" + m + "Subject: late\r\n\r\n").subject.empty());
  }
}

TEST_CASE("MessageWriter spills large compressed output to an unlinked file") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const std::string message = testing::RandomBytes(20 << 20, 42);  // incompressible
  {
    MessageWriter w({3, 1}, dir.path());
    CHECK(FilesOpenIn(dir.path()) == 0);
    for (size_t i = 0; i < message.size(); i += 100000) {
      REQUIRE(w.Append(message.data() + i, std::min<size_t>(100000, message.size() - i)).ok());
    }
    REQUIRE(w.Finish().ok());
    CHECK(FilesOpenIn(dir.path()) == 2);           // one spool file per level
    CHECK(std::filesystem::is_empty(dir.path()));  // ... and none has a name
    for (int level : {3, 1}) {
      CHECK(w.compressed(level).Size() > message.size());
      std::string frame;
      REQUIRE(ReadAll(w.compressed(level), &frame).ok());
      CHECK(Decompress(frame) == message);
    }
  }
  CHECK(FilesOpenIn(dir.path()) == 0);

  // Small output never touches the spool directory; large output must.
  const std::string missing = dir.Sub("does-not-exist");
  CHECK(Decompress(Write(std::string(100000, 'z'), {3}, 65536, missing).frames[0]) ==
        std::string(100000, 'z'));
  MessageWriter w({3}, missing);
  Status s;
  for (size_t i = 0; i < message.size() && s.ok(); i += 1 << 20) {
    s = w.Append(message.data() + i, 1 << 20);
  }
  if (s.ok()) s = w.Finish();
  CHECK(s.code() == Status::Code::kIOError);
  CHECK_THAT(s.message(), Catch::Contains(missing));
  CHECK(w.Append("x", 1).code() == Status::Code::kIOError);  // errors are sticky
}

}  // namespace
}  // namespace popvault
