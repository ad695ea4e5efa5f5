#include "handlers.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/file_io.hpp"

#include <filesystem>
#include "quickthumb/log.hpp"
#include "quickthumb/metrics.hpp"
#include "quickthumb/offload.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>

#include <charconv>
#include <cstring>

namespace quickthumb::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t max_header_bytes = 16 * 1024;
constexpr std::uint64_t max_small_body = 64 * 1024;  // bodies of non-upload requests

bhttp::message_generator method_not_allowed(const request_header& req, std::string_view allow) {
    bhttp::response<bhttp::string_body> res{bhttp::status::method_not_allowed, req.version()};
    res.set(bhttp::field::allow, allow);
    res.set(bhttp::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = R"({"error":{"code":"method_not_allowed","message":"this path does not accept that method"}})"
                 "\n";
    security_headers(res);
    res.prepare_payload();
    return res;
}

// GET /readyz: 200 when this instance takes uploads (not shutting down, the store answers a
// read), else 503. Redis is reported but never makes the instance unready: uploads and processing
// work without it (SQLite is the source of truth), so Redis down is "degraded" - still 200, with
// "redis": "down: <reason>".
asio::awaitable<bhttp::message_generator> handle_ready(services& svc, const request_header& req) {
    bool ready = svc.accepting.load();
    std::string store_state = "ok";
    try {
        co_await offload(svc.blocking.get_executor(), [&] { return svc.db.count(job_state::processing); });
    } catch (const std::exception& e) {
        ready = false;
        store_state = std::string("error: ") + e.what();
    }
    // The disk: an upload needs to create a file under tmp/ (full and read-only disks show here).
    std::string disk_state = "ok";
    auto probe = co_await offload(svc.blocking.get_executor(), [&] {
        const auto path = svc.files.temp_path();
        const std::uint8_t byte = 0;
        auto r = write_file_atomically(path, std::span<const std::uint8_t>(&byte, 1), durability::none);
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
        return r;
    });
    if (!probe) {
        ready = false;
        disk_state = std::string(errc_name(probe.error().code)) + ": " + probe.error().message;
    }
    boost::json::object body;
    body["status"] = ready ? "ready" : svc.accepting.load() ? "not ready" : "shutting down";
    body["store"] = store_state;
    body["disk"] = disk_state;
    body["redis"] = "off";
    if (svc.readiness)
        for (const auto& [key, value] : svc.readiness()) body[key] = value;
    co_return json_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable, body);
}

// GET /metrics: the Prometheus text. Rendering reads the store, so it runs on the blocking pool.
asio::awaitable<bhttp::message_generator> handle_metrics(services& svc, const request_header& req) {
    std::optional<std::string> text;
    try {
        text = co_await offload(svc.blocking.get_executor(), [&svc] { return svc.metrics->render(); });
    } catch (const std::exception& e) {
        log::warn("metrics not rendered", std::string("error=\"") + e.what() + "\"");
    }
    if (!text)
        co_return error_response(req, bhttp::status::service_unavailable, errc::io_error, "metrics are not available now");
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, metrics::content_type);
    res.set(bhttp::field::cache_control, "no-store");
    security_headers(res);
    res.keep_alive(req.keep_alive());
    if (req.method() != bhttp::verb::head) res.body() = std::move(*text);
    res.prepare_payload();
    co_return res;
}

// The status an answer carries, read from the start of its status line ("HTTP/1.1 404 "). A
// message_generator hides its message; reading the line keeps the many places that build answers
// unaware of metrics. prepare() does not advance the serializer: the write starts from the same bytes.
int status_of(bhttp::message_generator& res) {
    beast::error_code ec;
    const auto bufs = res.prepare(ec);
    if (ec) return 0;
    char line[12];
    std::size_t have = 0;
    for (const auto& b : bufs) {
        const auto n = std::min(b.size(), sizeof line - have);
        std::memcpy(line + have, b.data(), n);
        have += n;
        if (have == sizeof line) break;
    }
    int status = 0;
    if (have < sizeof line || std::string_view(line, 5) != "HTTP/") return 0;
    std::from_chars(line + 9, line + 12, status);
    return status;
}

// Routes a request whose body has already been consumed.
asio::awaitable<bhttp::message_generator> route(services& svc, const request_header& req) {
    const std::string_view path = path_of(req.target());
    const auto seg = segments(path);
    const auto method = req.method();
    const bool get = method == bhttp::verb::get || method == bhttp::verb::head;

    if (path == "/healthz") {
        if (!get) co_return method_not_allowed(req, "GET, HEAD");
        co_return json_response(req, bhttp::status::ok, {{"status", "ok"}});
    }
    if (path == "/readyz") {
        if (!get) co_return method_not_allowed(req, "GET, HEAD");
        co_return co_await handle_ready(svc, req);
    }
    if (path == "/metrics" && svc.metrics) {
        if (!get) co_return method_not_allowed(req, "GET, HEAD");
        co_return co_await handle_metrics(svc, req);
    }
    if (seg.size() >= 3 && seg[0] == "api" && seg[1] == "v1" && seg[2] == "jobs") {
        if (seg.size() == 3) {
            if (method == bhttp::verb::post) co_return error_response(req, bhttp::status::bad_request, errc::bad_request, "upload body missing");
            if (!get) co_return method_not_allowed(req, "GET, HEAD, POST");
            co_return co_await handle_list_jobs(svc, req);
        }
        if (seg.size() == 4) {
            if (method == bhttp::verb::delete_) co_return co_await handle_cancel_job(svc, req, std::string(seg[3]));
            if (!get) co_return method_not_allowed(req, "GET, HEAD, DELETE");
            co_return co_await handle_get_job(svc, req, std::string(seg[3]));
        }
        if (seg.size() == 5 && seg[4] == "retry") {
            if (method != bhttp::verb::post) co_return method_not_allowed(req, "POST");
            co_return co_await handle_retry_job(svc, req, std::string(seg[3]));
        }
    }
    if (seg.size() == 3 && seg[0] == "thumbs") {
        if (!get) co_return method_not_allowed(req, "GET, HEAD");
        co_return handle_thumb(svc, req, seg[1], seg[2]);
    }
    if (get && seg.size() <= 1) {
        auto res = handle_static(req, path == "/" ? "/index.html" : path);
        co_return res;
    }
    co_return error_response(req, bhttp::status::not_found, errc::not_found,
                             "no route for " + std::string(req.method_string()) + " " + std::string(path));
}

bool is_upload(const request_header& req) {
    return req.method() == bhttp::verb::post && path_of(req.target()) == "/api/v1/jobs";
}

// Closing a socket with unread request bytes makes the kernel send a reset, which can destroy the
// answer (a 413, a 415) before the client reads it. So, like nginx's lingering close: stop sending,
// then read and drop what the client still sends, for a bounded time and amount.
asio::awaitable<void> lingering_close(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    std::vector<char> sink(64 * 1024);
    const auto until = std::chrono::steady_clock::now() + linger_time;
    std::uint64_t drained = 0;
    while (drained < max_linger_bytes) {
        const auto left = until - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) break;
        stream.expires_after(left);
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
        if (rec) break;  // EOF: the client has read our answer and closed; or the time is up
        drained += n;
    }
}

// One connection: read a header, route, write the answer; repeat while keep-alive.
asio::awaitable<void> session(services& svc, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool keep_alive = true;
    bool failed = false;
    // Every request is counted here, by route template, status and time from its header to its
    // answer written.
    std::string_view label = "other";
    auto began = std::chrono::steady_clock::now();
    // ... and logged, one line each (the path carries the job id where there is one).
    std::string method_text, path_text;
    auto count = [&](int status) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
        if (log::enabled(log_level::info))
            log::info("request", "method=" + method_text + " path=\"" + path_text + "\" status=" + std::to_string(status) +
                                     " ms=" + std::to_string(static_cast<long long>(took.count() * 1000)));
        if (svc.metrics) svc.metrics->observe_request(label, status, took.count());
    };
    try {
        while (keep_alive) {
            header_parser parser;
            parser.header_limit(max_header_bytes);
            // Body limits are per route (the upload's is --max-upload); the header read must not judge.
            parser.body_limit(boost::none);
            stream.expires_after(header_timeout);
            auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
                ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
                break;
            began = std::chrono::steady_clock::now();
            label = "other";
            method_text = "-";
            path_text = "-";
            if (ec) {
                // Malformed or oversized header: answer 400/431 once, then close.
                request_header dummy{bhttp::verb::get, "/", 11};
                dummy.keep_alive(false);
                auto status = ec == bhttp::error::header_limit ? bhttp::status::request_header_fields_too_large
                                                               : bhttp::status::bad_request;
                stream.expires_after(write_timeout);
                co_await beast::async_write(stream, error_response(dummy, status, errc::bad_request,
                                                                   "malformed HTTP request: " + ec.message()),
                                            asio::as_tuple(asio::use_awaitable));
                count(static_cast<int>(status));
                break;
            }
            const request_header& req = parser.get();
            method_text = std::string(req.method_string());
            path_text.clear();
            for (char c : path_of(req.target()).substr(0, 256))  // bounded, and safe inside quotes
                path_text += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
            label = route_label(path_of(req.target()), req.method());
            std::optional<bhttp::message_generator> response;
            if (is_upload(req)) {
                // The handler marks its answer keep_alive(false) whenever the body was not read whole.
                response.emplace(co_await handle_upload(svc, stream, buffer, parser));
            } else {
                // Any small body is read and dropped; a large one is refused and the connection closed.
                // (Beast checks a Content-Length against the limit only while reading the header,
                // so a declared length is checked here; chunked bodies are checked as they come.)
                const auto declared = parser.content_length();
                bhttp::request_parser<bhttp::string_body> body_parser(std::move(parser));
                body_parser.body_limit(max_small_body);
                if (!body_parser.is_done()) {
                    beast::error_code bec;
                    if (declared && *declared > max_small_body) {
                        bec = bhttp::error::body_limit;
                    } else {
                        stream.expires_after(body_read_timeout);
                        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, body_parser,
                                                                    asio::as_tuple(asio::use_awaitable));
                        bec = rec;
                    }
                    if (bec) {
                        request_header h{body_parser.get().base()};
                        h.keep_alive(false);
                        stream.expires_after(write_timeout);
                        co_await beast::async_write(stream, error_response(h, bhttp::status::payload_too_large,
                                                                       errc::payload_too_large,
                                                                       "request body too large or malformed"),
                                                    asio::as_tuple(asio::use_awaitable));
                        count(413);
                        break;
                    }
                }
                request_header h{body_parser.get().base()};
                if (h.method() == bhttp::verb::get && path_of(h.target()) == "/api/v1/events") {
                    auto refused = co_await handle_events(svc, stream, h);
                    if (!refused) {
                        // The stream ended (its time is how long it was open): the connection goes with it.
                        count(200);
                        break;
                    }
                    response.emplace(std::move(*refused));
                } else {
                    response.emplace(co_await route(svc, h));
                }
            }
            keep_alive = response->keep_alive();
            const int status = status_of(*response);
            stream.expires_after(write_timeout);
            auto [wec, wn] = co_await beast::async_write(stream, std::move(*response), asio::as_tuple(asio::use_awaitable));
            count(status);
            if (wec) break;
        }
    } catch (const std::exception& e) {
        // A bug: log it; answer 500 without details below, if the connection still works.
        log::error("session failed", std::string("error=\"") + e.what() + "\"");
        failed = true;
    }
    if (failed) {
        count(500);
        request_header dummy{bhttp::verb::get, "/", 11};
        dummy.keep_alive(false);
        stream.expires_after(write_timeout);
        co_await beast::async_write(stream, error_response(dummy, bhttp::status::internal_server_error, errc::internal,
                                                           "internal error"),
                                    asio::as_tuple(asio::use_awaitable));
    }
    // Every way out of the loop but a clean end of the client's requests may leave a body unread.
    co_await lingering_close(stream);
}

}  // namespace

server::server(asio::io_context& io, services& svc) : io_(io), svc_(svc), acceptor_(io) {}

tcp::endpoint server::listen(const std::string& address, std::uint16_t port) {
    tcp::endpoint ep(asio::ip::make_address(address), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    return acceptor_.local_endpoint();
}

void server::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void server::stop_accepting() {
    beast::error_code ignored;
    acceptor_.close(ignored);
}

asio::awaitable<void> server::accept_loop() {
    while (acceptor_.is_open()) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            // EMFILE and friends: keep serving the connections we have.
            log::warn("accept failed", "error=\"" + ec.message() + "\"");
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        asio::co_spawn(io_, session(svc_, std::move(socket)), asio::detached);
    }
}

}  // namespace quickthumb::http
