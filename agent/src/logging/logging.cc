#include "logging/logging.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/FileChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/PatternFormatter.h>
#include <Poco/SplitterChannel.h>
#include <Poco/SyslogChannel.h>

#include <filesystem>
#include <iostream>
#include <sstream>

namespace popvault {
namespace {

const char* LevelName(Poco::Message::Priority p) {
  static const char* const kNames[] = {"",       "fatal",       "critical", "error", "warning",
                                       "notice", "information", "debug",    "trace"};
  return p >= Poco::Message::PRIO_FATAL && p <= Poco::Message::PRIO_TRACE ? kNames[p] : "unknown";
}

Poco::AutoPtr<Poco::Formatter> MakeFormatter(const std::string& format, bool with_time) {
  if (format == "json") return new JsonFormatter;
  // Syslog stamps its own time.
  return new Poco::PatternFormatter(with_time ? "%Y-%m-%d %H:%M:%S %p %s: %t" : "%s: %t");
}

Poco::AutoPtr<Poco::Channel> Formatted(Poco::AutoPtr<Poco::Formatter> formatter,
                                       Poco::AutoPtr<Poco::Channel> channel) {
  return new Poco::FormattingChannel(formatter, channel);
}

Status OpenFileChannel(const std::string& path, Poco::AutoPtr<Poco::Channel>* channel) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  Poco::AutoPtr<Poco::FileChannel> file(new Poco::FileChannel(path));
  file->setProperty(Poco::FileChannel::PROP_ROTATION, "10 M");
  file->setProperty(Poco::FileChannel::PROP_ARCHIVE, "number");
  file->setProperty(Poco::FileChannel::PROP_COMPRESS, "true");
  file->setProperty(Poco::FileChannel::PROP_PURGECOUNT, "5");
  try {
    file->open();  // now, so a bad path is a startup error and not a lost log
  } catch (const Poco::Exception& e) {
    return Status::IOError("log_file: cannot open " + path + ": " + e.displayText());
  }
  *channel = file;
  return Status::OK();
}

}  // namespace

void JsonFormatter::format(const Poco::Message& msg, std::string& text) {
  Poco::JSON::Object line;
  line.set("time", Poco::DateTimeFormatter::format(msg.getTime(), "%Y-%m-%dT%H:%M:%S.%iZ"));
  line.set("level", std::string(LevelName(msg.getPriority())));
  line.set("source", msg.getSource());
  line.set("message", msg.getText());
  std::ostringstream out;
  line.stringify(out);
  text = out.str();
}

Status SetUpLogging(const Config& config) {
  Poco::AutoPtr<Poco::Channel> primary;
  if (config.log_file.empty()) {
    primary = new Poco::ConsoleChannel(std::cerr);
  } else {
    POPVAULT_RETURN_IF_ERROR(OpenFileChannel(config.log_file, &primary));
  }
  Poco::AutoPtr<Poco::SplitterChannel> all(new Poco::SplitterChannel);
  all->addChannel(Formatted(MakeFormatter(config.log_format, true), primary));
  if (config.log_syslog) {
    Poco::AutoPtr<Poco::Channel> syslog(new Poco::SyslogChannel(
        "popvault", Poco::SyslogChannel::SYSLOG_PID, Poco::SyslogChannel::SYSLOG_DAEMON));
    all->addChannel(Formatted(MakeFormatter(config.log_format, false), syslog));
  }
  try {
    const int level = Poco::Logger::parseLevel(config.log_level);
    // The root first: later loggers copy it. Then every existing one ("").
    Poco::Logger::root().setChannel(all);
    Poco::Logger::root().setLevel(level);
    Poco::Logger::setChannel("", all);
    Poco::Logger::setLevel("", level);
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("log_level: " + e.displayText());
  }
  return Status::OK();
}

}  // namespace popvault
