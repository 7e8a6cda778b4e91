#include "daemon/metrics_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

namespace popvault {
namespace {

using Poco::Net::HTTPResponse;

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const Metrics& metrics, const std::function<bool()>& healthy)
      : metrics_(metrics), healthy_(healthy) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string body = "not found\n";
    std::string type = "text/plain; charset=utf-8";
    HTTPResponse::HTTPStatus status = HTTPResponse::HTTP_NOT_FOUND;
    if (request.getMethod() != "GET" && request.getMethod() != "HEAD") {
      status = HTTPResponse::HTTP_METHOD_NOT_ALLOWED;
      body = "method not allowed\n";
    } else if (request.getURI() == "/metrics") {
      status = HTTPResponse::HTTP_OK;
      type = "text/plain; version=0.0.4; charset=utf-8";
      body = metrics_.Render();
    } else if (request.getURI() == "/healthz") {
      bool ok = healthy_();
      status = ok ? HTTPResponse::HTTP_OK : HTTPResponse::HTTP_SERVICE_UNAVAILABLE;
      body = ok ? "ok\n" : "stopping\n";
    }
    response.setStatus(status);
    response.setContentType(type);
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    std::ostream& out = response.send();
    if (request.getMethod() != "HEAD") out << body;
  }

 private:
  const Metrics& metrics_;
  const std::function<bool()>& healthy_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(const Metrics& metrics, std::function<bool()> healthy)
      : metrics_(metrics), healthy_(std::move(healthy)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(metrics_, healthy_);
  }

 private:
  const Metrics& metrics_;
  const std::function<bool()> healthy_;
};

}  // namespace

Status MetricsServer::Start(const std::string& listen, const Metrics& metrics,
                            std::function<bool()> healthy, std::unique_ptr<MetricsServer>* server) {
  try {
    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress(listen), /*reuseAddress=*/true);
    socket.listen(16);
    uint16_t port = socket.address().port();
    Poco::Net::HTTPServerParams::Ptr params(new Poco::Net::HTTPServerParams);
    params->setMaxThreads(2);
    params->setKeepAlive(false);
    auto http = std::make_unique<Poco::Net::HTTPServer>(new Factory(metrics, std::move(healthy)),
                                                        socket, params);
    http->start();
    server->reset(new MetricsServer(std::move(http), port));
    return Status::OK();
  } catch (const Poco::Exception& e) {
    return Status::IOError("metrics_listen " + listen + ": " + e.displayText());
  }
}

MetricsServer::MetricsServer(std::unique_ptr<Poco::Net::HTTPServer> server, uint16_t port)
    : server_(std::move(server)), port_(port) {}

MetricsServer::~MetricsServer() { server_->stopAll(/*abortCurrent=*/false); }

}  // namespace popvault
