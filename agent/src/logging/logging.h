// Logging: the process's Poco logging set up as [agent] says.
//
//   log_file empty       stderr (right under systemd: the journal takes it)
//   log_file = PATH      PATH, rotated at 10 MiB, 5 gzip-compressed archives kept
//   log_syslog = true    also the local syslog (ident popvault, facility daemon)
//   log_format = text    "2026-01-31 12:00:00 W sync: message"
//   log_format = json    one JSON object per line: time, level, source, message
//
// Log lines carry what code logs; nothing here adds config values to them.
#pragma once

#include <Poco/Formatter.h>

#include <string>

#include "config/config.h"
#include "popvault/status.h"

namespace popvault {

// Replaces the channel and level of every logger (existing and future).
// IOError if log_file cannot be opened (its directory is created).
Status SetUpLogging(const Config& config);

// One JSON object per message: {"time": ISO 8601 UTC with milliseconds,
// "level": "warning", "source": logger name, "message": text}. Thread-safe.
class JsonFormatter : public Poco::Formatter {
 public:
  void format(const Poco::Message& msg, std::string& text) override;
};

}  // namespace popvault
