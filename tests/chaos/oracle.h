// Oracle: what the chaos harness checks, read straight from the files the
// popvault process leaves (the filesystem stores and the audit log), never
// through popvault's own code, so a bug there cannot hide itself.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model_server.h"

namespace popvault::chaos {

class Oracle {
 public:
  // `stores`: each store's root directory and name.
  explicit Oracle(std::vector<std::pair<std::string, std::string>> stores)
      : stores_(std::move(stores)) {}

  // Whether every store holds `mail` byte-exact: the object
  // messages/<sha[0:2]>/<sha>.zst decompresses (plain zstd, no dictionary)
  // to exactly its bytes. Otherwise *why names the first store that does
  // not and how.
  bool ArchivedEverywhere(const Mail& mail, std::string* why) const;

  // The "deleted" lines of the audit log for `account`, counted by sha256.
  // A line that does not parse is counted under "" and named in *bad.
  static std::map<std::string, int> AuditedDeletions(const std::string& path,
                                                     const std::string& account, std::string* bad);

 private:
  std::vector<std::pair<std::string, std::string>> stores_;  // root, name
};

}  // namespace popvault::chaos
