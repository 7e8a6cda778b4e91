#include "logging/logging.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace popvault {
namespace {

namespace fs = std::filesystem;

Poco::JSON::Object::Ptr ParseLine(const std::string& line) {
  Poco::JSON::Parser parser;
  return parser.parse(line).extract<Poco::JSON::Object::Ptr>();
}

TEST_CASE("the JSON formatter writes one parseable object with time, level, source, message") {
  JsonFormatter formatter;
  Poco::Message msg("sync", "quote \" backslash \\ newline \n tab \t done",
                    Poco::Message::PRIO_WARNING);
  std::string text;
  formatter.format(msg, text);
  CHECK(text.find('\n') == std::string::npos);  // one line per message
  Poco::JSON::Object::Ptr obj = ParseLine(text);
  CHECK(obj->getValue<std::string>("level") == "warning");
  CHECK(obj->getValue<std::string>("source") == "sync");
  CHECK(obj->getValue<std::string>("message") == msg.getText());
  CHECK_THAT(obj->getValue<std::string>("time"),
             Catch::Matchers::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
}

TEST_CASE("log_file with log_format = json gets one JSON object per line, at the level set") {
  char tmpl[] = "/tmp/popvault-logging-test-XXXXXX";
  fs::path dir = mkdtemp(tmpl);
  Config config;
  config.log_file = (dir / "sub/popvault.log").string();  // the directory is created
  config.log_format = "json";
  config.log_level = "notice";
  REQUIRE(SetUpLogging(config).ok());
  Poco::Logger& logger = Poco::Logger::get("test.source");
  logger.notice("first");
  logger.information("below the level");
  logger.error("second \"quoted\"");
  std::ifstream in(config.log_file);
  std::vector<std::string> messages;
  for (std::string line; std::getline(in, line);) {
    Poco::JSON::Object::Ptr obj = ParseLine(line);
    CHECK(obj->getValue<std::string>("source") == "test.source");
    messages.push_back(obj->getValue<std::string>("message"));
  }
  CHECK(messages == std::vector<std::string>{"first", "second \"quoted\""});
  Config console;  // back to stderr before the file goes
  REQUIRE(SetUpLogging(console).ok());
  fs::remove_all(dir);
}

TEST_CASE("a log_file that cannot be opened is an error") {
  Config config;
  config.log_file = "/proc/popvault-cannot-be-here/log";
  Status s = SetUpLogging(config);
  CHECK(s.code() == Status::Code::kIOError);
  CHECK_THAT(s.message(), Catch::Matchers::Contains("log_file: cannot open"));
}

}  // namespace
}  // namespace popvault
