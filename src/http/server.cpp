#include "handlers.hpp"
#include "rate_limiter.hpp"

#include "access.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/file_io.hpp"

#include <filesystem>
#include "quickthumb/log.hpp"
#include "quickthumb/metrics.hpp"
#include "quickthumb/offload.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <functional>
#include <unordered_set>
#include <cstring>

namespace quickthumb::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The server's limits, shared with its sessions: a session frame may outlive the server (the
// io_context destroys unfinished ones last), and gives its connection back on the way out.
struct connection_limits {
    connection_counter connections;
    std::optional<rate_limiter> uploads;  // none: --upload-rate 0
    std::size_t refusing = 0;             // refused connections still being answered
};

// The open sessions, for a draining shutdown (the network thread's only). A session is idle while
// it waits for a request's header: a drain closes those at once, lets the others finish the
// request they are in (its answer says Connection: close), and tells event streams to reconnect.
struct open_sessions {
    std::unordered_set<beast::tcp_stream*> all, idle;
    bool draining = false;
    std::function<void()> on_drained;  // once the last session has ended, after a drain began

    void ended(beast::tcp_stream* s) {
        all.erase(s);
        idle.erase(s);
        if (draining && all.empty() && on_drained) std::exchange(on_drained, nullptr)();
    }
};

namespace {

// Refused connections answered at once; beyond this many they are closed without a word.
constexpr std::size_t max_refusing = 256;
constexpr std::chrono::seconds refuse_write_timeout{2};

// A connection's place under the caps, given back when its session ends however it ends.
class connection_slot {
public:
    connection_slot(std::shared_ptr<connection_limits> lim, std::string peer) : lim_(std::move(lim)), peer_(std::move(peer)) {}
    connection_slot(connection_slot&& o) noexcept : lim_(std::move(o.lim_)), peer_(std::move(o.peer_)) {}
    connection_slot(const connection_slot&) = delete;
    connection_slot& operator=(const connection_slot&) = delete;
    connection_slot& operator=(connection_slot&&) = delete;
    ~connection_slot() {
        if (lim_) lim_->connections.close(peer_);
    }

private:
    std::shared_ptr<connection_limits> lim_;
    std::string peer_;
};

constexpr std::size_t max_header_bytes = 16 * 1024;
constexpr std::size_t max_header_fields = 100;
constexpr std::size_t max_target_bytes = 8 * 1024;
constexpr std::uint64_t max_small_body = 64 * 1024;  // bodies of non-upload requests

answer method_not_allowed(const request_header& req, std::string_view allow) {
    answer res = error_response(req, bhttp::status::method_not_allowed, errc::method_not_allowed,
                                "this path does not accept that method");
    res.add({{"Allow", std::string(allow)}});
    return res;
}

// GET /readyz: 200 when this instance takes uploads (not shutting down, the store answers a
// read), else 503. With the Redis mirror, Redis is reported but never makes the instance unready:
// uploads and processing work without it (SQLite is the source of truth), so Redis down is
// "degraded" - still 200, with "redis": "down: <reason>". With --store redis, Redis is the job
// store: down, the store's read fails and the instance is not ready.
asio::awaitable<answer> handle_ready(services& svc, const request_header& req) {
    bool ready = svc.accepting.load();
    std::string store_state = "ok";
    if (auto r = co_await svc.jobs.store_ready(); !r) {
        ready = false;
        store_state = "error: " + r.error().message;
    }
    // The disk or the bucket: an upload needs to create a file under tmp/ (full and read-only
    // disks show here), or the bucket to answer a HEAD.
    std::string disk_state = "ok";
    auto probe = co_await svc.files.probe();
    if (!probe) {
        ready = false;
        disk_state = std::string(errc_name(probe.error().code)) + ": " + probe.error().message;
    }
    boost::json::object body;
    body["status"] = ready ? "ready" : svc.accepting.load() ? "not ready" : "shutting down";
    body["store"] = store_state;
    body["disk"] = disk_state;
    body["storage"] = svc.cfg.storage.empty() ? "data directory" : svc.cfg.storage;
    body["redis"] = "off";
    for (const auto& part : svc.readiness)
        for (const auto& [key, value] : part()) body[key] = value;
    co_return json_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable, body);
}

// GET /metrics: the Prometheus text, with the jobs in each state as the store counts them now.
asio::awaitable<answer> handle_metrics(services& svc, const request_header& req) {
    auto counts = co_await svc.jobs.count_by_state();
    if (!counts)
        co_return error_response(req, bhttp::status::service_unavailable, errc::io_error, "metrics are not available now");
    std::string text = svc.metrics->render(*counts);
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, metrics::content_type);
    res.set(bhttp::field::cache_control, "no-store");
    security_headers(res);
    res.keep_alive(req.keep_alive());
    if (req.method() != bhttp::verb::head) res.body() = std::move(text);
    res.prepare_payload();
    co_return res;
}

// Answers a plain route's request (its body, if any, already read and dropped), or a 405 or
// 404 when the table has no route for it.
asio::awaitable<answer> dispatch(services& svc, const request_header& req, const route_match& m) {
    if (!m.found) {
        if (!m.allow.empty()) co_return method_not_allowed(req, m.allow);
        co_return error_response(req, bhttp::status::not_found, errc::not_found,
                                 "no route for " + std::string(req.method_string()) + " " +
                                     std::string(path_of(req.target())));
    }
    const std::string_view path = path_of(req.target());
    switch (m.found->target) {
        case endpoint::health: co_return json_response(req, bhttp::status::ok, {{"status", "ok"}});
        case endpoint::ready: co_return co_await handle_ready(svc, req);
        case endpoint::metrics:
            if (!svc.metrics) break;  // metrics off: as if there were no such page
            co_return co_await handle_metrics(svc, req);
        case endpoint::list_jobs: co_return co_await handle_list_jobs(svc, req);
        case endpoint::get_job: co_return co_await handle_get_job(svc, req, std::string(m.params.at(0)));
        case endpoint::cancel_job: co_return co_await handle_cancel_job(svc, req, std::string(m.params.at(0)));
        case endpoint::retry_job: co_return co_await handle_retry_job(svc, req, std::string(m.params.at(0)));
        case endpoint::thumb:
            co_return co_await handle_thumb(svc, req, std::string(m.params.at(0)), std::string(m.params.at(1)));
        case endpoint::page: co_return handle_static(req, path == "/" ? "/index.html" : path);
        case endpoint::upload:  // (not plain: the session runs them)
        case endpoint::events: break;
    }
    co_return handle_static(req, path);
}

// A header that parsed but is still refused: an overlong URL, too many fields, a method or a
// version this server does not speak (an HTTP/2 preface is "PRI * HTTP/2.0").
std::optional<error> refuse_header(const request_header& req) {
    if (req.target().size() > max_target_bytes)
        return error{errc::uri_too_long, "the URL is longer than " + std::to_string(max_target_bytes) + " bytes"};
    if (std::distance(req.begin(), req.end()) > static_cast<std::ptrdiff_t>(max_header_fields))
        return error{errc::header_too_large,
                     "the request has more than " + std::to_string(max_header_fields) + " header fields"};
    if (req.method() == bhttp::verb::unknown)
        return error{errc::bad_request, "unknown method '" + std::string(req.method_string()).substr(0, 32) + "'"};
    if (req.version() != 10 && req.version() != 11)
        return error{errc::bad_request, "only HTTP/1.0 and HTTP/1.1 are spoken here"};
    return std::nullopt;
}

// Why a header read failed, as the answer's error: past the size limit it is the URL's fault when
// the request line alone is longer than a URL may be. The parser consumes the request line once it
// has it whole (then `target` is set); before that, `got` (what was buffered) starts with it.
error header_failure(beast::error_code ec, std::string_view target, std::string_view got) {
    if (ec != bhttp::error::header_limit) return error{errc::bad_request, "malformed HTTP request: " + ec.message()};
    const auto line = target.empty() ? got.substr(0, got.find("\r\n")) : target;
    if (line.size() > max_target_bytes)
        return error{errc::uri_too_long, "the URL is longer than " + std::to_string(max_target_bytes) + " bytes"};
    return error{errc::header_too_large,
                 "the request header is larger than " + std::to_string(max_header_bytes) + " bytes"};
}

// Tokens and CORS, decided from the header alone (an upload's body is never read for a refused
// request). Returns the answer for a refused request or a preflight; adds to `extra` the header
// fields the answer needs.
std::optional<answer> check_access(const access_policy& policy, const request_header& req, extra_fields& extra) {
    const auto path = path_of(req.target());
    std::optional<std::string_view> origin;
    if (auto it = req.find(bhttp::field::origin); it != req.end()) origin = it->value();
    request_header closing{req.method(), req.target(), req.version()};
    closing.keep_alive(false);  // a refused request's body is not read: the connection goes
    switch (decide_cors(policy.cors_origins, req.method() == bhttp::verb::options, path, origin)) {
        case cors_action::none: break;
        case cors_action::allow: extra = cors_fields(*origin, false); break;
        case cors_action::preflight_ok: {
            extra = cors_fields(*origin, true);
            bhttp::response<bhttp::empty_body> res{bhttp::status::no_content, req.version()};
            security_headers(res);
            res.keep_alive(false);
            return answer(std::move(res));
        }
        case cors_action::preflight_refused:
            return error_response(closing, bhttp::status::forbidden, errc::forbidden,
                                  "the origin '" + std::string(*origin) + "' may not call this API");
    }
    std::optional<std::string_view> authorization;
    if (auto it = req.find(bhttp::field::authorization); it != req.end()) authorization = it->value();
    std::optional<std::string> query_token;
    if (path == "/api/v1/events" && req.target().find("access_token") != std::string_view::npos)
        if (auto fields = query_fields(req.target()); fields)
            if (auto it = fields->find("access_token"); it != fields->end()) query_token = it->second;
    if (allowed(policy, path, authorization, query_token)) return std::nullopt;
    extra.emplace_back("WWW-Authenticate", "Bearer realm=\"quickthumb\"");
    return error_response(closing, bhttp::status::unauthorized, errc::unauthorized,
                          authorization || query_token ? "the token is not accepted"
                                                       : "this request needs Authorization: Bearer <token>");
}

// Closing a socket with unread request bytes makes the kernel send a reset, which can destroy the
// answer (a 413, a 415) before the client reads it. So, like nginx's lingering close: stop sending,
// then read and drop what the client still sends, for a bounded time and amount.
asio::awaitable<void> lingering_close(beast::tcp_stream& stream, std::chrono::steady_clock::duration time = linger_time,
                                      std::uint64_t max_bytes = max_linger_bytes) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    std::vector<char> sink(64 * 1024);
    const auto until = std::chrono::steady_clock::now() + time;
    std::uint64_t drained = 0;
    while (drained < max_bytes) {
        const auto left = until - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) break;
        stream.expires_after(left);
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
        if (rec) break;  // EOF: the client has read our answer and closed; or the time is up
        drained += n;
    }
}

// A connection over a cap: 503 without reading a request, a short deadline, then closed.
asio::awaitable<void> refuse_connection(std::shared_ptr<connection_limits> lim, tcp::socket socket, std::string peer) {
    if (lim->refusing >= max_refusing) co_return;  // under a flood: the socket just closes
    ++lim->refusing;
    log::info("connection refused", "client=" + peer + " status=503 open=" + std::to_string(lim->connections.open()));
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(refuse_write_timeout);
    auto res = retry_later_response(11, error{errc::too_many_connections, "too many open connections; retry shortly"}, 1)
                   .release();
    auto [ec, n] = co_await beast::async_write(stream, std::move(res), asio::as_tuple(asio::use_awaitable));
    // A request the client already sent is read and dropped briefly, so the close is no reset.
    if (!ec) co_await lingering_close(stream, std::chrono::seconds(1), 64 * 1024);
    --lim->refusing;
}

// One connection: read a header, route, write the answer; repeat while keep-alive. `peer` is the
// remote address; the client is that, or the trusted proxy's X-Forwarded-For.
asio::awaitable<void> session(services& svc, std::shared_ptr<connection_limits> lim,
                              std::shared_ptr<open_sessions> open, tcp::socket socket, std::string peer,
                              connection_slot slot) {
    beast::tcp_stream stream(std::move(socket));
    open->all.insert(&stream);
    // Leaves the set however the session ends (a destroyed frame too, at the very end).
    struct leave {
        open_sessions& open;
        beast::tcp_stream* s;
        ~leave() { open.ended(s); }
    } leave_open{*open, &stream};
    bool drained_idle = false;  // closed by a drain while waiting for a header: nothing unread
    beast::flat_buffer buffer;
    bool keep_alive = true;
    bool failed = false;
    // Every request is counted here, by route template, status and time from its header to its
    // answer written.
    std::string_view label = "other";
    auto began = std::chrono::steady_clock::now();
    // ... and logged, one line each (the path carries the job id where there is one).
    std::string method_text, path_text;
    std::string client = peer;
    auto count = [&](int status) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
        if (log::enabled(log_level::info))
            log::info("request", "method=" + method_text + " path=\"" + path_text + "\" status=" + std::to_string(status) +
                                     " ms=" + std::to_string(static_cast<long long>(took.count() * 1000)) +
                                     " client=" + client);
        if (svc.metrics) svc.metrics->observe_request(label, status, took.count());
    };
    try {
        while (keep_alive && !open->draining) {
            header_parser parser;
            parser.header_limit(max_header_bytes);
            // Body limits are per route (the upload's is --max-upload); the header read must not judge.
            parser.body_limit(boost::none);
            stream.expires_after(svc.cfg.header_timeout);  // the whole header, however it trickles in
            if (buffer.size() == 0) open->idle.insert(&stream);  // (bytes waiting: a request has begun)
            auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            open->idle.erase(&stream);
            if (ec == asio::error::operation_aborted && open->draining) {
                drained_idle = true;
                break;
            }
            if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
                ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
                break;
            began = std::chrono::steady_clock::now();
            label = "other";
            method_text = "-";
            path_text = "-";
            if (ec) {
                // Malformed or oversized header: answer 400/414/431 once, then close.
                request_header dummy{bhttp::verb::get, "/", 11};
                dummy.keep_alive(false);
                const auto why = header_failure(
                    ec, parser.get().target(), std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
                stream.expires_after(write_timeout);
                auto out = error_response(dummy, why).release();  // (named: GCC 12 and temporaries in co_await)
                co_await beast::async_write(stream, std::move(out), asio::as_tuple(asio::use_awaitable));
                count(static_cast<int>(status_for(why.code)));
                break;
            }
            const request_header& req = parser.get();
            method_text = std::string(req.method_string());
            path_text.clear();
            for (char c : path_of(req.target()).substr(0, 256))  // bounded, and safe inside quotes
                path_text += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
            const route_match matched = match_route(path_of(req.target()), req.method());
            label = matched.label;
            const handler_kind kind = matched.found ? matched.found->kind : handler_kind::plain;
            client = peer;
            if (svc.cfg.trust_proxy) {
                std::string forwarded;
                for (const auto& f : req) {
                    if (!beast::iequals(f.name_string(), "X-Forwarded-For")) continue;
                    if (!forwarded.empty()) forwarded += ',';
                    forwarded += f.value();
                }
                if (auto c = forwarded_client(forwarded)) client = std::move(*c);
            }
            std::optional<answer> response;
            // Refused from the header alone, before any body is read: a header over the limits,
            // then a missing token (or a CORS preflight), then an upload over the client's rate.
            extra_fields extra;  // added to the answer (CORS, WWW-Authenticate, Connection: close)
            const auto refused = refuse_header(req);
            if (!refused && svc.access) response = check_access(*svc.access, req, extra);
            rate_limiter::decision quota;
            if (!refused && !response && kind == handler_kind::upload && lim->uploads)
                quota = lim->uploads->take(client, rate_limiter::clock::now());
            if (refused) {
                request_header h{req};
                if (h.version() != 10) h.version(11);  // never answer as "HTTP/2.0"
                h.keep_alive(false);                   // the body (if any) is not read
                response.emplace(error_response(h, *refused));
            } else if (response) {
                // refused or a preflight: answered from the header alone
            } else if (!quota.allowed) {
                const error limited{errc::rate_limited, "too many uploads from " + client + "; retry in " +
                                                            std::to_string(quota.retry_after_seconds) + " s"};
                response.emplace(retry_later_response(req.version(), limited, quota.retry_after_seconds));
            } else if (kind == handler_kind::upload) {
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
                        stream.expires_after(svc.cfg.body_timeout);
                        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, body_parser,
                                                                    asio::as_tuple(asio::use_awaitable));
                        bec = rec;
                    }
                    if (bec == beast::error::timeout) break;  // a stalled body: the stream closed the socket
                    if (bec) {
                        request_header h{body_parser.get().base()};
                        h.keep_alive(false);
                        const bool too_large = bec == bhttp::error::body_limit;
                        const error why = too_large ? error{errc::payload_too_large,
                                                            "the request body is larger than " +
                                                                std::to_string(max_small_body) + " bytes"}
                                                    : error{errc::bad_request, "malformed request body: " + bec.message()};
                        stream.expires_after(write_timeout);
                        auto out = error_response(h, why).release();
                        co_await beast::async_write(stream, std::move(out), asio::as_tuple(asio::use_awaitable));
                        count(static_cast<int>(status_for(why.code)));
                        break;
                    }
                }
                request_header h{body_parser.get().base()};
                if (kind == handler_kind::stream) {
                    h.target(strip_query_param(h.target(), "access_token"));  // said once is enough
                    auto refused = co_await handle_events(svc, stream, h, extra);
                    if (!refused) {
                        // The stream ended (its time is how long it was open): the connection goes with it.
                        count(200);
                        break;
                    }
                    response.emplace(std::move(*refused));
                } else {
                    response.emplace(co_await dispatch(svc, h, matched));
                }
            }
            keep_alive = response->keep_alive();
            // Draining: this answer is the connection's last, and says so.
            if (open->draining && keep_alive) {
                response->keep_alive(false);
                keep_alive = false;
            }
            response->add(extra);
            const int status = response->status();
            stream.expires_after(write_timeout);
            auto out = std::move(*response).release();
            auto [wec, wn] = co_await beast::async_write(stream, std::move(out), asio::as_tuple(asio::use_awaitable));
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
        auto out = error_response(dummy, bhttp::status::internal_server_error, errc::internal, "internal error").release();
        co_await beast::async_write(stream, std::move(out), asio::as_tuple(asio::use_awaitable));
    }
    if (drained_idle) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return;
    }
    // Every way out of the loop but a clean end of the client's requests may leave a body unread.
    co_await lingering_close(stream);
}

}  // namespace

server::server(asio::io_context& io, services& svc)
    : io_(io), svc_(svc), acceptor_(io),
      limits_(std::make_shared<connection_limits>(
          connection_limits{connection_counter(svc.cfg.max_connections, svc.cfg.max_client_connections), std::nullopt})),
      sessions_(std::make_shared<open_sessions>()) {
    if (svc.cfg.upload_rate > 0) limits_->uploads.emplace(svc.cfg.upload_rate, svc.cfg.upload_burst);
}

server::~server() {
    // Sessions still open now end when the network context is destroyed: nobody to tell then.
    sessions_->on_drained = nullptr;
}

void server::drain(std::function<void()> on_drained) {
    asio::post(io_, [this, on_drained = std::move(on_drained)]() mutable {
        sessions_->draining = true;
        sessions_->on_drained = std::move(on_drained);
        for (auto* s : sessions_->idle) s->socket().cancel();
        if (svc_.events) svc_.events->wake_all();  // event streams say goodbye
        if (sessions_->all.empty()) std::exchange(sessions_->on_drained, nullptr)();
    });
}

void server::close_all() {
    asio::post(io_, [this] {
        for (auto* s : sessions_->all) {
            beast::error_code ignored;
            s->socket().shutdown(tcp::socket::shutdown_both, ignored);
            s->socket().cancel();
        }
    });
}

std::size_t server::fit_connections_to(std::size_t open_file_limit) {
    const auto cap = connection_cap_for(svc_.cfg.max_connections, open_file_limit);
    limits_->connections.set_max_total(cap);
    return cap;
}

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
            // EMFILE and friends: keep serving the connections we have, and pause rather than
            // spin (the pending connection stays in the backlog until a descriptor frees up).
            log::warn("accept failed", "error=\"" + ec.message() + "\"");
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        const auto remote = socket.remote_endpoint(ec);
        if (ec) continue;  // gone already
        // The caps count the real peer, never a header it could forge.
        std::string peer = normalized_address(remote.address().to_string());
        if (!limits_->connections.try_open(peer)) {
            asio::co_spawn(io_, refuse_connection(limits_, std::move(socket), std::move(peer)), asio::detached);
            continue;
        }
        connection_slot slot(limits_, peer);
        asio::co_spawn(io_, session(svc_, limits_, sessions_, std::move(socket), std::move(peer), std::move(slot)),
                       asio::detached);
    }
}

}  // namespace quickthumb::http
