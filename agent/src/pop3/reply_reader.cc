#include "pop3/reply_reader.h"

#include <cstring>

namespace popvault::pop3 {
namespace {

static_assert(ReplyReader::kBufferSize >= kMaxLineOctets);

// Where the multi-line parser stands relative to line boundaries. Survives
// buffer refills, so a terminator split across reads is still recognised.
enum class LineState {
  kLineStart,  // next byte starts a line
  kMidLine,    // inside a line: copy through the next LF
  kDot,        // consumed a '.' that started a line
  kDotCr,      // consumed ".\r" at a line start; the CR is withheld
};

}  // namespace

ReplyReader::ReplyReader(Transport* transport)
    : transport_(transport), buffer_(new char[kBufferSize]) {}

Status ReplyReader::Fill(ReadWait wait) {
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  size_t n = 0;
  POPVAULT_RETURN_IF_ERROR(transport_->Read(buffer_.get() + end_, kBufferSize - end_, &n, wait));
  if (n == 0) return Status::Network("connection closed by the server in the middle of a reply");
  end_ += n;
  return Status::OK();
}

Status ReplyReader::ReadStatusLine(std::string* line) {
  size_t scanned = 0;  // bytes after begin_ already known to hold no LF
  for (;;) {
    const char* start = buffer_.get() + begin_;
    const void* lf = std::memchr(start + scanned, '\n', end_ - begin_ - scanned);
    if (lf != nullptr) {
      size_t length = static_cast<const char*>(lf) - start + 1;
      if (length > kMaxLineOctets) break;
      line->assign(start, length - 1);
      if (!line->empty() && line->back() == '\r') line->pop_back();
      begin_ += length;
      return Status::OK();
    }
    scanned = end_ - begin_;
    if (scanned >= kMaxLineOctets) break;
    // Waiting for the reply to start only while none of it is buffered.
    POPVAULT_RETURN_IF_ERROR(Fill(scanned == 0 ? ReadWait::kReply : ReadWait::kIdle));
  }
  return Status::Protocol("reply line longer than " + std::to_string(kMaxLineOctets) + " octets");
}

Status ReplyReader::ReadMultiLine(ByteSink& sink) {
  LineState state = LineState::kLineStart;
  for (;;) {
    // The status line before the body started the reply.
    if (begin_ == end_) POPVAULT_RETURN_IF_ERROR(Fill(ReadWait::kIdle));
    const char* p = buffer_.get() + begin_;
    const char* const end = buffer_.get() + end_;
    const char* span = p;  // start of bytes not yet delivered to the sink
    auto deliver = [&](const char* upto) {
      Status s = upto > span ? sink.Append(span, upto - span) : Status::OK();
      span = upto;
      return s;
    };
    while (p < end) {
      switch (state) {
        case LineState::kMidLine: {
          const void* lf = std::memchr(p, '\n', end - p);
          if (lf == nullptr) {
            p = end;
          } else {
            p = static_cast<const char*>(lf) + 1;
            state = LineState::kLineStart;
          }
          break;
        }
        case LineState::kLineStart:
          if (*p == '.') {
            POPVAULT_RETURN_IF_ERROR(deliver(p));
            span = ++p;  // the dot is never delivered: stuffing or terminator
            state = LineState::kDot;
          } else {
            state = LineState::kMidLine;
          }
          break;
        case LineState::kDot:
          if (*p == '\n') {
            begin_ = p + 1 - buffer_.get();
            return Status::OK();
          }
          if (*p == '\r') {
            // Withhold the CR until we know whether ".\r\n" ends the reply.
            POPVAULT_RETURN_IF_ERROR(deliver(p));
            span = ++p;
            state = LineState::kDotCr;
          } else {
            state = LineState::kMidLine;
          }
          break;
        case LineState::kDotCr:
          if (*p == '\n') {
            begin_ = p + 1 - buffer_.get();
            return Status::OK();
          }
          // ".\r" followed by data: a stuffed line whose data starts with CR.
          POPVAULT_RETURN_IF_ERROR(sink.Append("\r", 1));
          state = LineState::kMidLine;
          break;
      }
    }
    POPVAULT_RETURN_IF_ERROR(deliver(end));
    begin_ = end_ = 0;
  }
}

void ReplyReader::DiscardBuffered() { begin_ = end_ = 0; }

}  // namespace popvault::pop3
