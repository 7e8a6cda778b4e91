// ReplyReader: reads POP3 replies from a Transport through one fixed buffer.
//
// Status lines are bounded (kMaxLineOctets); multi-line bodies are streamed to
// a ByteSink in large spans, dot-unstuffed and otherwise byte-exact, so memory
// use does not depend on line or message length.
//
// Lines end at LF; a preceding CR is part of the line ending only where noted.
// Bare-LF line endings are tolerated, and a CR not followed by LF is data.
//
// Timeouts: a read that waits for the first byte of a reply (a status line
// with nothing of it buffered yet) is ReadWait::kReply, every other read is
// ReadWait::kIdle: the rest of a status line, and the whole multi-line body
// (its status line has started the reply). The transport maps these to
// reply_timeout and idle_timeout and reports kTimeout naming the one that fired.
//
// Errors: the transport's (kNetwork, kTimeout, kTls); end of stream inside a
// reply is kNetwork; an over-long status line is kProtocol; a sink error is
// returned as is. After an error the reader's position in the stream is
// undefined, so the caller must stop using the connection.
//
// Not thread-safe. The transport must outlive the reader.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "pop3/protocol.h"
#include "pop3/transport.h"
#include "popvault/byte_stream.h"
#include "popvault/status.h"

namespace popvault::pop3 {

class ReplyReader {
 public:
  // Reads in chunks of up to kBufferSize bytes.
  explicit ReplyReader(Transport* transport);

  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Reads one line, at most kMaxLineOctets long including its ending, and
  // stores it without the CRLF / LF.
  Status ReadStatusLine(std::string* line);

  // Reads a multi-line body up to and including the ".CRLF" (or ".LF")
  // terminator. Delivers every line with its original line ending, minus the
  // first '.' of lines that start with one. Bytes after the terminator stay
  // buffered for the next reply.
  Status ReadMultiLine(ByteSink& sink);

  // Forgets buffered bytes. Used after STLS: nothing read before the TLS
  // handshake may be taken as a reply sent after it (RFC 2595 §4).
  void DiscardBuffered();

  // Large reads keep system calls and sink calls few (RETR throughput).
  static constexpr size_t kBufferSize = 64 * 1024;

 private:
  // Reads more bytes after end_, first moving unread bytes to the front.
  Status Fill(ReadWait wait);

  Transport* transport_;
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0;  // first unread byte
  size_t end_ = 0;    // one past the last buffered byte
};

}  // namespace popvault::pop3
