#include "config/ini_file.h"

#include <cstdlib>
#include <fstream>

namespace popvault {
namespace {

std::string Trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(ws) - begin + 1);
}

Status LineError(const std::string& path, int line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

const IniEntry* IniSection::Find(const std::string& key) const {
  for (const IniEntry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

Status ParseIniFile(const std::string& path, std::vector<IniSection>* sections) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(path + ": cannot open config file");
  sections->clear();
  std::string raw;
  for (int line = 1; std::getline(in, raw); ++line) {
    std::string text = Trim(raw);
    if (text.empty() || text[0] == ';' || text[0] == '#') continue;
    if (text[0] == '[') {
      if (text.back() != ']') return LineError(path, line, "section header lacks ']'");
      std::string name = Trim(text.substr(1, text.size() - 2));
      for (const IniSection& s : *sections) {
        if (s.name == name) {
          return LineError(path, line,
                           "section [" + name + "] repeats line " + std::to_string(s.line));
        }
      }
      sections->push_back(IniSection{name, path, line, {}});
      continue;
    }
    size_t eq = text.find('=');
    if (eq == std::string::npos) return LineError(path, line, "expected 'key = value'");
    if (sections->empty()) return LineError(path, line, "key outside any [section]");
    IniSection& section = sections->back();
    std::string key = Trim(text.substr(0, eq));
    if (key.empty()) return LineError(path, line, "empty key");
    if (const IniEntry* prior = section.Find(key)) {
      return LineError(
          path, line,
          "[" + section.name + "] " + key + ": repeats line " + std::to_string(prior->line));
    }
    std::string value = Trim(text.substr(eq + 1));
    section.entries.push_back(IniEntry{key, value, line, value});
  }
  return Status::OK();
}

namespace {

// Expands one value; on error, *what says why (naming the variable only).
bool ExpandValue(const std::string& text, std::string* out, std::string* what) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out->push_back(text[i]);
    } else if (i + 1 < text.size() && text[i + 1] == '$') {
      out->push_back('$');
      ++i;
    } else if (i + 1 < text.size() && text[i + 1] == '{') {
      size_t close = text.find('}', i + 2);
      if (close == std::string::npos) {
        *what = "unclosed ${ (write $$ for a literal $)";
        return false;
      }
      std::string name = text.substr(i + 2, close - i - 2);
      const char* env = name.empty() ? nullptr : std::getenv(name.c_str());
      if (env == nullptr) {
        *what = "environment variable '" + name + "' is not set";
        return false;
      }
      out->append(env);
      i = close;
    } else {
      out->push_back('$');  // a $ before anything else is literal: "pa$s" stays
    }
  }
  return true;
}

}  // namespace

Status ExpandEnvironment(std::vector<IniSection>* sections) {
  for (IniSection& section : *sections) {
    for (IniEntry& e : section.entries) {
      std::string what;
      if (!ExpandValue(e.text, &e.value, &what)) {
        return Status::InvalidArgument(section.file + ":" + std::to_string(e.line) + ": [" +
                                       section.name + "] " + e.key + ": " + what);
      }
    }
  }
  return Status::OK();
}

}  // namespace popvault
