#include "daemon/metrics.h"

#include <cstdio>
#include <functional>

namespace popvault {

void Metrics::RecordPass(const std::string& account, const SyncReport& report, const Status& status,
                         double now, double duration) {
  std::lock_guard<std::mutex> lock(mu_);
  Account& a = accounts_[account];
  a.last_poll = now;
  a.last_duration = duration;
  a.messages += report.fetched;
  a.bytes += report.fetched_bytes;
  a.deletes += report.deleted;
  a.on_server = report.listed;
  a.verify_failed += report.verify_failed;
  a.deduplicated += report.deduplicated;
  a.pending_deletes = report.pending_deletes;
  a.too_large = report.too_large;
  // A pass cut short by shutdown did what it could; it is no error.
  if (status.ok() || status.code() == Status::Code::kAborted) {
    ++a.polls_ok;
    a.last_success = now;
    a.error_code.clear();
    a.error_message.clear();
  } else {
    ++a.polls_failed;
    a.error_code = Status::CodeName(status.code());
    a.error_message = status.message();
  }
}

void Metrics::SetStopped(const std::string& account, bool stopped) {
  std::lock_guard<std::mutex> lock(mu_);
  accounts_[account].stopped = stopped;
}

void Metrics::KeepOnly(const std::set<std::string>& accounts) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(accounts_, [&](const auto& entry) { return !accounts.count(entry.first); });
  for (const std::string& name : accounts) accounts_[name];
}

std::string PrometheusLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  // One family at a time: HELP, TYPE, then a sample per account.
  auto family = [&](const char* name, const char* type, const char* help,
                    const std::function<std::string(const std::string&, const Account&)>& row) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [account, a] : accounts_) out += row(PrometheusLabel(account), a);
  };
  auto simple = [&](const char* name, const char* type, const char* help,
                    const std::function<double(const Account&)>& value) {
    family(name, type, help, [&](const std::string& account, const Account& a) {
      return std::string(name) + "{account=\"" + account + "\"} " + Number(value(a)) + "\n";
    });
  };
  simple("popvault_last_poll_timestamp_seconds", "gauge", "End of the last pass (0: none yet).",
         [](const Account& a) { return a.last_poll; });
  simple("popvault_last_success_timestamp_seconds", "gauge",
         "End of the last successful pass (0: none yet).",
         [](const Account& a) { return a.last_success; });
  simple("popvault_poll_duration_seconds", "gauge", "Duration of the last pass.",
         [](const Account& a) { return a.last_duration; });
  family("popvault_polls_total", "counter", "Passes by result.",
         [](const std::string& account, const Account& a) {
           return "popvault_polls_total{account=\"" + account + "\",result=\"ok\"} " +
                  Number(static_cast<double>(a.polls_ok)) + "\npopvault_polls_total{account=\"" +
                  account + "\",result=\"error\"} " + Number(static_cast<double>(a.polls_failed)) +
                  "\n";
         });
  family("popvault_last_error_info", "gauge",
         "The error of the last pass, as labels; absent after a successful pass.",
         [](const std::string& account, const Account& a) -> std::string {
           if (a.error_code.empty()) return "";
           return "popvault_last_error_info{account=\"" + account + "\",code=\"" +
                  PrometheusLabel(a.error_code) + "\",message=\"" +
                  PrometheusLabel(a.error_message) + "\"} 1\n";
         });
  simple("popvault_account_stopped", "gauge",
         "1: not polled until a reload ([AUTH] or [SYS/PERM] from the server).",
         [](const Account& a) { return a.stopped ? 1 : 0; });
  simple("popvault_messages_archived_total", "counter", "Messages fetched and stored.",
         [](const Account& a) { return static_cast<double>(a.messages); });
  simple("popvault_bytes_archived_total", "counter", "Raw octets of the messages stored.",
         [](const Account& a) { return static_cast<double>(a.bytes); });
  simple("popvault_deletes_committed_total", "counter", "Deletions the server committed at QUIT.",
         [](const Account& a) { return static_cast<double>(a.deletes); });
  simple("popvault_delete_verify_failed_total", "counter",
         "Messages retention released but kept on the server: a stored copy failed read-back.",
         [](const Account& a) { return static_cast<double>(a.verify_failed); });
  simple("popvault_dedup_hits_total", "counter",
         "Messages fetched whose content every store already held (stored once).",
         [](const Account& a) { return static_cast<double>(a.deduplicated); });
  simple("popvault_pending_deletes", "gauge",
         "Messages retention released that the last pass left on the server (verification, "
         "a store down, shutdown); they go on a later pass.",
         [](const Account& a) { return static_cast<double>(a.pending_deletes); });
  simple("popvault_messages_too_large", "gauge",
         "Messages over max_message_size the last pass left on the server, not archived.",
         [](const Account& a) { return static_cast<double>(a.too_large); });
  simple("popvault_messages_on_server", "gauge", "Messages the server listed in the last pass.",
         [](const Account& a) { return static_cast<double>(a.on_server); });
  return out;
}

}  // namespace popvault
