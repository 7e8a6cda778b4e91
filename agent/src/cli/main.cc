// popvault: the command-line front end. Parses arguments, loads the config,
// opens the ledger and stores, and hands each account to the sync engine.
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

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
    "  doctor [--account NAME] [--dry-run] [--json]\n"
    "                                  check the ledger against the stores and rebuild\n"
    "                                  it from their records (--dry-run: only show it)\n"
    "  check-config                    validate the config file\n"
    "  run [--daemon] [--pidfile=FILE] poll every account on its schedule until SIGTERM\n"
    "                                  (SIGHUP reloads the config; see README.md)\n"
    "\n"
    "Each command takes only the options shown for it, each once.\n";

// Every option a command may take. --config is every command's.
struct OptionSpec {
  const char* name;
  const char* value;  // what its value is called in messages, or nullptr for a flag
};
constexpr OptionSpec kOptions[] = {
    {"--config", "FILE"}, {"--account", "NAME"},  {"--output", "DIR"},
    {"--json", nullptr},  {"--dry-run", nullptr},
};

// The one table of what each command takes (besides --config); anything
// else is a usage error, so that no option is ever silently ignored.
struct CommandSpec {
  const char* name;
  std::set<std::string> options;   // it may take
  std::set<std::string> required;  // it must have (a subset of options)
  const char* argument;            // its one positional argument, or nullptr
  // What to run instead, for an option it refuses that users reach for.
  std::map<std::string, std::string> hints;
};
const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"sync",
       {"--account"},
       {},
       nullptr,
       {{"--dry-run", "to see what sync would delete: popvault retention --dry-run"}}},
      {"list", {"--account", "--json"}, {}, nullptr, {}},
      {"cat", {}, {}, "ID", {}},
      {"export", {"--output", "--account"}, {"--output"}, nullptr, {}},
      {"retention", {"--dry-run", "--account"}, {"--dry-run"}, nullptr, {}},
      {"purge", {"--account", "--dry-run"}, {}, nullptr, {}},
      {"doctor", {"--account", "--dry-run", "--json"}, {}, nullptr, {}},
      {"check-config", {}, {}, nullptr, {}},
  };
  return commands;
}

const OptionSpec* FindOption(const std::string& name) {
  for (const OptionSpec& o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

// "sync takes --account NAME" / "cat takes ID", for messages.
std::string WhatItTakes(const CommandSpec& command) {
  std::string takes = std::string(command.name) + " takes --config FILE";
  for (const OptionSpec& o : kOptions) {
    if (!command.options.count(o.name)) continue;
    takes += std::string(", ") + o.name + (o.value != nullptr ? std::string(" ") + o.value : "");
  }
  if (command.argument != nullptr) takes += std::string(" and ") + command.argument;
  return takes;
}

// Why a required option is required, where that is not obvious.
std::string RequiredMessage(const CommandSpec& command, const OptionSpec& option) {
  std::string message = std::string(command.name) + " needs " + option.name +
                        (option.value != nullptr ? std::string(" ") + option.value : "");
  if (std::string(command.name) == "retention") {
    message += " (it only shows what sync would delete; deletions happen in sync)";
  }
  return message;
}

Status ParseArgs(int argc, char** argv, Args* args) {
  if (argc < 2) return Status::InvalidArgument("missing command");
  args->command = argv[1];
  const CommandSpec* command = nullptr;
  for (const CommandSpec& c : Commands()) {
    if (args->command == c.name) command = &c;
  }
  if (command == nullptr) return Status::InvalidArgument("unknown command '" + args->command + "'");
  const std::string name = command->name;
  std::map<std::string, std::string> given;  // option -> value ("" for a flag)
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const OptionSpec* option = FindOption(a);
    if (option == nullptr && a.size() > 1 && a[0] == '-') {
      return Status::InvalidArgument(name + ": unknown option '" + a + "' (" +
                                     WhatItTakes(*command) + ")");
    }
    if (option == nullptr) {  // a positional argument
      if (command->argument == nullptr) {
        return Status::InvalidArgument(name + " takes no argument, got '" + a + "'");
      }
      if (!args->id.empty()) {
        return Status::InvalidArgument(name + " takes one " + command->argument +
                                       ", got a second: '" + a + "'");
      }
      if (a.empty()) return Status::InvalidArgument(name + ": empty " + command->argument);
      args->id = a;
      continue;
    }
    if (a != "--config" && !command->options.count(a)) {
      auto hint = command->hints.find(a);
      return Status::InvalidArgument(
          name + " does not take " + a + " (" +
          (hint != command->hints.end() ? hint->second : WhatItTakes(*command)) + ")");
    }
    if (given.count(a)) return Status::InvalidArgument(name + ": " + a + " given twice");
    std::string value;
    if (option->value != nullptr) {
      if (i + 1 >= argc) {
        return Status::InvalidArgument(name + ": " + a + " needs a value (" + a + " " +
                                       option->value + ")");
      }
      value = argv[++i];
      // An empty value, or an option where the value should be, is a slip:
      // taking it would export into "--account" or select no account.
      if (value.empty() || value.compare(0, 2, "--") == 0) {
        return Status::InvalidArgument(name + ": " + a + " needs a value, got '" + value + "' (" +
                                       a + " " + option->value + ")");
      }
    }
    given[a] = value;
  }
  if (!given.count("--config")) return Status::InvalidArgument("--config FILE is required");
  for (const std::string& required : command->required) {
    if (!given.count(required)) {
      return Status::InvalidArgument(RequiredMessage(*command, *FindOption(required)));
    }
  }
  if (command->argument != nullptr && args->id.empty()) {
    return Status::InvalidArgument(name + " needs an " + command->argument);
  }
  args->config_path = given["--config"];
  args->account = given["--account"];
  args->output = given["--output"];
  args->json = given.count("--json") > 0;
  args->dry_run = given.count("--dry-run") > 0;
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
  Context ctx;
  // doctor --dry-run reads the ledger beside a running daemon; doctor itself
  // needs it to itself, like sync.
  const bool only_reads = args.command == "list" || args.command == "cat" ||
                          args.command == "export" || (args.command == "doctor" && args.dry_run);
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
  if (args.command == "doctor") return Doctor(ctx, args);
  return Cat(ctx, args);
}

}  // namespace
}  // namespace popvault

int main(int argc, char** argv) { return popvault::Main(argc, argv); }
