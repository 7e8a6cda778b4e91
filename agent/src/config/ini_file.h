// IniFile: the INI syntax popvault's config uses, with line numbers.
//
// Poco's IniFileConfiguration would do the parsing, but it forgets line
// numbers, lets a repeated key silently win, treats '#' lines as keys and
// expands ${...} inside values (mangling passwords). Config errors must name
// file and line, so this small reader keeps every entry with its position.
//
// Syntax: "[section]" lines; "key = value" lines; blank lines; comments are
// lines whose first non-blank character is ';' or '#'. Keys and section
// names are case-sensitive; values are trimmed and taken literally.
#pragma once

#include <string>
#include <vector>

#include "popvault/status.h"

namespace popvault {

struct IniEntry {
  std::string key;
  std::string value;  // after ${NAME} expansion (ExpandEnvironment)
  int line = 0;
  // The value as written. Error messages quote this, never `value`: an
  // expanded ${NAME} may be a secret.
  std::string text;
};

struct IniSection {
  std::string name;
  std::string file;  // the file it was read from (the main config or an include)
  int line = 0;
  std::vector<IniEntry> entries;

  const IniEntry* Find(const std::string& key) const;
};

// Parses `path`. InvalidArgument naming "file:line" for a line that is
// neither a section, an assignment nor a comment, for a key outside any
// section, and for a repeated section or key.
Status ParseIniFile(const std::string& path, std::vector<IniSection>* sections);

// Replaces ${NAME} in every value of `sections` by the environment variable
// NAME, and $$ by $ (any other $ is literal). InvalidArgument
// "FILE:LINE: [SECTION] KEY: ..." for an unset variable (naming it) or an
// unclosed ${. The error never contains a variable's value.
Status ExpandEnvironment(std::vector<IniSection>* sections);

}  // namespace popvault
