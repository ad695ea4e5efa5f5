#pragma once
// The HTTP front: a listener and one coroutine per connection on the network io_context.
#include "quickthumb/config.hpp"
#include "quickthumb/event_bus.hpp"
#include "quickthumb/jobs_service.hpp"
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace quickthumb {
class metrics;
}

namespace quickthumb::http {

struct connection_limits;
struct open_sessions;
struct access_policy;  // src/http/access.hpp

// What the handlers use. Owned by the app; outlives the server.
struct services {
    const serve_config& cfg;
    jobs_service& jobs;                  // every job read and change
    blob_store& files;                   // uploads and thumbnails
    std::atomic<bool> accepting{true};   // false once shutdown began: uploads get 503
    // Extra fields for GET /readyz from other parts (the Redis mirror's {"redis": "up"}, the
    // memory budget's {"memory": {...}}), so http does not depend on them; each adds its own. No
    // Redis part: "redis": "off".
    std::vector<std::function<boost::json::object()>> readiness{};
    // Live job events for GET /api/v1/events; null: the route answers 503.
    event_bus* events = nullptr;
    // Every request is counted here and GET /metrics renders it; null: the route answers 404.
    quickthumb::metrics* metrics = nullptr;
    // Tokens and CORS (src/http/access.hpp); null: everything open, CORS off.
    const access_policy* access = nullptr;
};

class server {
public:
    server(boost::asio::io_context& io, services& svc);
    ~server();

    // Binds and listens; throws (fatal) when it cannot. Returns the bound endpoint (port 0 -> real).
    boost::asio::ip::tcp::endpoint listen(const std::string& address, std::uint16_t port);
    void start();
    // Stops accepting new connections; open ones finish their current request.
    void stop_accepting();
    // Shutdown, after stop_accepting: idle connections close now, the others after the request
    // they are in (its answer is their last), event streams after a last "reconnect" event.
    // `on_drained` runs on the network thread once no connection is left. Thread-safe.
    void drain(std::function<void()> on_drained);
    // The grace is over: every connection closes now. Thread-safe.
    void close_all();
    // Lowers --max-connections to fit `open_file_limit` with room for files; returns the cap.
    std::size_t fit_connections_to(std::size_t open_file_limit);

private:
    boost::asio::awaitable<void> accept_loop();

    boost::asio::io_context& io_;
    services& svc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::shared_ptr<connection_limits> limits_;  // --upload-rate and the connection caps
    std::shared_ptr<open_sessions> sessions_;    // for the draining shutdown
};

}  // namespace quickthumb::http
