// popvault: the command-line front end. Parses arguments, loads the config,
// opens the ledger and stores, and hands each account to the sync engine.
#include <iostream>
#include <set>
#include <string>

#include "cli/commands.h"

namespace popvault {
namespace {

constexpr const char* kUsage =
    "usage: popvault COMMAND --config FILE [options]\n"
    "\n"
    "commands:\n"
    "  sync [--account NAME]           archive new mail of every (or one) account, once\n"
    "  list [--account NAME] [--json]  one row per archived message\n"
    "  cat ID                          write an archived message (sha256 or a unique\n"
    "                                  prefix of at least 8 hex digits) to stdout\n"
    "  export --output DIR [--account NAME]\n"
    "                                  write every archived message of every (or one)\n"
    "                                  account to DIR/ACCOUNT/SHA256.eml, verified\n"
    "  retention --dry-run [--account NAME]\n"
    "                                  show what sync would delete from the server\n"
    "                                  now or later, and why (connects read-only)\n"
    "  purge [--account NAME] [--dry-run]\n"
    "                                  remove archived mail the server no longer has\n"
    "                                  once older than archive_retention_days\n"
    "  check-config                    validate the config file\n"
    "  run [--daemon] [--pidfile=FILE] poll every account on its schedule until SIGTERM\n"
    "                                  (SIGHUP reloads the config; see README.md)\n";

Status ParseArgs(int argc, char** argv, Args* args) {
  if (argc < 2) return Status::InvalidArgument("missing command");
  args->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return Status::InvalidArgument(a + " needs a value");
      *out = argv[++i];
      return Status::OK();
    };
    if (a == "--config") {
      POPVAULT_RETURN_IF_ERROR(value(&args->config_path));
    } else if (a == "--account") {
      POPVAULT_RETURN_IF_ERROR(value(&args->account));
    } else if (a == "--output") {
      POPVAULT_RETURN_IF_ERROR(value(&args->output));
    } else if (a == "--json") {
      args->json = true;
    } else if (a == "--dry-run") {
      args->dry_run = true;
    } else if (args->command == "cat" && args->id.empty() && a[0] != '-') {
      args->id = a;
    } else {
      return Status::InvalidArgument("unexpected argument '" + a + "'");
    }
  }
  if (args->config_path.empty()) return Status::InvalidArgument("--config FILE is required");
  if (args->command == "cat" && args->id.empty()) return Status::InvalidArgument("cat needs an ID");
  if (args->command == "export" && args->output.empty()) {
    return Status::InvalidArgument("export needs --output DIR");
  }
  return Status::OK();
}

int Main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "run") return Run(argc, argv, kUsage);
  Args args;
  Status s = ParseArgs(argc, argv, &args);
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!s.ok()) {
    std::cerr << "popvault: " << s.message() << "\n" << kUsage;
    return 2;
  }
  if (args.command == "check-config") return CheckConfig(args);
  static const std::set<std::string> kCommands = {"sync",   "list",      "cat",
                                                  "export", "retention", "purge"};
  if (!kCommands.count(args.command)) {
    std::cerr << "popvault: unknown command '" << args.command << "'\n" << kUsage;
    return 2;
  }
  Context ctx;
  const bool only_reads =
      args.command == "list" || args.command == "cat" || args.command == "export";
  s = ctx.Open(args.config_path, only_reads);
  if (!s.ok()) {
    std::cerr << "popvault: " << s.ToString() << "\n";
    return 1;
  }
  if (args.command == "sync") return Sync(ctx, args);
  if (args.command == "list") return List(ctx, args);
  if (args.command == "export") return Export(ctx, args);
  if (args.command == "retention") return Retention(ctx, args);
  if (args.command == "purge") return Purge(ctx, args);
  return Cat(ctx, args);
}

}  // namespace
}  // namespace popvault

int main(int argc, char** argv) { return popvault::Main(argc, argv); }
