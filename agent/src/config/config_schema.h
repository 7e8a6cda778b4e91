// ConfigSchema: schemas/config.schema.json (JSON Schema draft-07), compiled
// into the agent, and the questions the config loader asks it: each key's
// type, default, error text and whether it is a path or a secret.
//
// The config as the schema sees it: {"agent": {KEY: VALUE},
// "store": {NAME: {KEY: VALUE}}, "account": {NAME: {KEY: VALUE}}}.
#pragma once

#include <Poco/JSON/Object.h>

#include <memory>
#include <string>
#include <vector>

#include "popvault/status.h"

namespace valijson {
class Schema;
}

namespace popvault {

// One place where a document breaks the schema: the path of member names
// from the root (empty: the root itself) and valijson's description.
struct SchemaViolation {
  std::vector<std::string> path;
  std::string description;
};

class ConfigSchema {
 public:
  // The schema compiled into this binary. Aborts if it does not parse (a
  // build defect, caught by the config tests).
  static const ConfigSchema& Embedded();
  // The text of the compiled-in schema.
  static const std::string& EmbeddedText();

  // Parses a schema. InvalidArgument if `text` is not JSON or not a schema.
  static Status Parse(const std::string& text, std::unique_ptr<ConfigSchema>* schema);

  ~ConfigSchema();
  ConfigSchema(const ConfigSchema&) = delete;
  ConfigSchema& operator=(const ConfigSchema&) = delete;

  // The schema of KEY in a section of `kind` ("agent", "store", "account"),
  // or null if the section kind does not declare KEY.
  Poco::JSON::Object::Ptr Key(const std::string& kind, const std::string& key) const;
  // The keys `kind` declares, in name order.
  std::vector<std::string> Keys(const std::string& kind) const;
  // The keys `kind` requires.
  std::vector<std::string> Required(const std::string& kind) const;
  // True if `kind` rejects keys it does not declare.
  bool Closed(const std::string& kind) const;
  // The section name schema ("definitions/name"): pattern and x-error.
  Poco::JSON::Object::Ptr Name() const;

  // Every violation of the schema by `doc`, deepest first within a branch.
  std::vector<SchemaViolation> Validate(const Poco::JSON::Object::Ptr& doc) const;

 private:
  ConfigSchema() = default;
  Poco::JSON::Object::Ptr Definition(const std::string& kind) const;

  Poco::JSON::Object::Ptr root_;
  std::unique_ptr<valijson::Schema> compiled_;
};

// String forms of the annotations config.cc reads from a key's schema.
std::string SchemaString(const Poco::JSON::Object::Ptr& key, const std::string& member);
bool SchemaFlag(const Poco::JSON::Object::Ptr& key, const std::string& member);

}  // namespace popvault
