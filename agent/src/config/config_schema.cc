#include "config/config_schema.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <cstdlib>
#include <iostream>
#include <valijson/adapters/poco_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace popvault {

// Defined in the source file CMake generates from schemas/config.schema.json.
extern const char kConfigSchemaJson[];

const std::string& ConfigSchema::EmbeddedText() {
  static const std::string text(kConfigSchemaJson);
  return text;
}

const ConfigSchema& ConfigSchema::Embedded() {
  static const ConfigSchema* schema = [] {
    std::unique_ptr<ConfigSchema> parsed;
    Status s = Parse(EmbeddedText(), &parsed);
    if (!s.ok()) {
      std::cerr << "popvault: the compiled-in config schema is broken: " << s.ToString() << "\n";
      std::abort();
    }
    return parsed.release();  // lives as long as the process
  }();
  return *schema;
}

Status ConfigSchema::Parse(const std::string& text, std::unique_ptr<ConfigSchema>* schema) {
  std::unique_ptr<ConfigSchema> parsed(new ConfigSchema());
  try {
    Poco::JSON::Parser parser;
    parsed->root_ = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    parsed->compiled_ = std::make_unique<valijson::Schema>();
    valijson::SchemaParser schema_parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::PocoJsonAdapter adapter(parsed->root_);
    schema_parser.populateSchema(adapter, *parsed->compiled_);
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("config schema: " + e.displayText());
  } catch (const std::exception& e) {  // valijson throws std::runtime_error
    return Status::InvalidArgument(std::string("config schema: ") + e.what());
  }
  *schema = std::move(parsed);
  return Status::OK();
}

ConfigSchema::~ConfigSchema() = default;

Poco::JSON::Object::Ptr ConfigSchema::Definition(const std::string& kind) const {
  return root_->getObject("definitions")->getObject(kind);
}

Poco::JSON::Object::Ptr ConfigSchema::Key(const std::string& kind, const std::string& key) const {
  Poco::JSON::Object::Ptr definition = Definition(kind);
  if (definition.isNull()) return nullptr;
  Poco::JSON::Object::Ptr properties = definition->getObject("properties");
  return properties.isNull() ? nullptr : properties->getObject(key);
}

std::vector<std::string> ConfigSchema::Keys(const std::string& kind) const {
  std::vector<std::string> keys;
  Poco::JSON::Object::Ptr properties = Definition(kind)->getObject("properties");
  if (!properties.isNull()) properties->getNames(keys);
  return keys;
}

std::vector<std::string> ConfigSchema::Required(const std::string& kind) const {
  std::vector<std::string> keys;
  Poco::JSON::Array::Ptr required = Definition(kind)->getArray("required");
  for (size_t i = 0; !required.isNull() && i < required->size(); ++i) {
    keys.push_back(required->getElement<std::string>(i));
  }
  return keys;
}

bool ConfigSchema::Closed(const std::string& kind) const {
  Poco::Dynamic::Var additional = Definition(kind)->get("additionalProperties");
  return additional.isBoolean() && !additional.extract<bool>();
}

Poco::JSON::Object::Ptr ConfigSchema::Name() const { return Definition("name"); }

std::vector<SchemaViolation> ConfigSchema::Validate(const Poco::JSON::Object::Ptr& doc) const {
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::PocoJsonAdapter adapter(doc);
  std::vector<SchemaViolation> violations;
  if (validator.validate(*compiled_, adapter, &results)) return violations;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    SchemaViolation v{{}, error.description};
    // valijson's context is "<root>", then "[member]" per level.
    for (size_t i = 1; i < error.context.size(); ++i) {
      const std::string& c = error.context[i];
      v.path.push_back(c.size() >= 2 ? c.substr(1, c.size() - 2) : c);
    }
    violations.push_back(std::move(v));
  }
  return violations;
}

std::string SchemaString(const Poco::JSON::Object::Ptr& key, const std::string& member) {
  if (key.isNull() || !key->has(member)) return "";
  return key->get(member).convert<std::string>();
}

bool SchemaFlag(const Poco::JSON::Object::Ptr& key, const std::string& member) {
  if (key.isNull() || !key->has(member)) return false;
  Poco::Dynamic::Var v = key->get(member);
  return v.isBoolean() && v.extract<bool>();
}

}  // namespace popvault
