#include "config/ini_file.h"

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
      sections->push_back(IniSection{name, line, {}});
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
    section.entries.push_back(IniEntry{key, Trim(text.substr(eq + 1)), line});
  }
  return Status::OK();
}

}  // namespace popvault
