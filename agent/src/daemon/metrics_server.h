// MetricsServer: the optional HTTP endpoint ([agent] metrics_listen), on
// Poco::Net::HTTPServer, bound to exactly the configured address.
//
//   GET /metrics   Metrics::Render(), Prometheus text format 0.0.4
//   GET /healthz   200 "ok" while healthy() is true, else 503
//   anything else  404
//
// The server answers from its own threads (at most 2); `metrics` and
// `healthy` must outlive it and be thread-safe.
#pragma once

#include <Poco/Net/HTTPServer.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/metrics.h"
#include "popvault/status.h"

namespace popvault {

class MetricsServer {
 public:
  // Binds `listen` ("127.0.0.1:9393", "[::1]:9393"; port 0 picks a free one)
  // and starts answering. IOError naming the address if it cannot bind.
  static Status Start(const std::string& listen, const Metrics& metrics,
                      std::function<bool()> healthy, std::unique_ptr<MetricsServer>* server);

  ~MetricsServer();  // stops answering; waits for requests in progress

  uint16_t port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<Poco::Net::HTTPServer> server, uint16_t port);
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  uint16_t port_;
};

}  // namespace popvault
