#include "s3/client.hpp"

#include "s3/sigv4.hpp"
#include "s3/xml.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/vector_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <optional>
#include <random>

namespace quickthumb::s3 {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

// One kept-alive connection to the endpoint: plain or TLS.
struct connection {
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
    void close() {
        boost::system::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().socket().close(ignored);
    }
};

// How one attempt went: an answer, or a transport failure and whether the request may have
// reached the server on a connection that was idle (the server may have closed it meanwhile).
struct attempt_outcome {
    std::optional<response> answer;
    std::string failure;  // the transport failure, when there is no answer
    bool stale = false;   // failed on a reused connection before any answer came
};

bool retryable_status(unsigned status, std::string_view s3_code) {
    return status >= 500 || status == 429 || s3_code == "RequestTimeout" || s3_code == "SlowDown";
}

std::string encoded_target(const std::string& path, const std::vector<query_param>& query) {
    std::string t = uri_encode(path, true);
    for (std::size_t i = 0; i < query.size(); ++i) {
        t += i == 0 ? '?' : '&';
        t += uri_encode(query[i].name, false);
        t += '=';
        t += uri_encode(query[i].value, false);
    }
    return t;
}

}  // namespace

struct client::impl {
    explicit impl(const bucket_settings& s) : ssl(asio::ssl::context::tls_client), rng(std::random_device{}()) {
        if (s.server.tls) {
            // Throws (fatal at start-up) when the bundle cannot be read.
            if (s.ca_bundle.empty())
                ssl.set_default_verify_paths();
            else
                ssl.load_verify_file(s.ca_bundle);
            ssl.set_verify_mode(asio::ssl::verify_peer);
        }
    }

    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    asio::ssl::context ssl;
    std::vector<std::unique_ptr<connection>> idle;
    std::vector<tcp::endpoint> endpoints;
    clock_type::time_point resolved_at{};
    std::mt19937_64 rng;
    std::thread thread;

    asio::awaitable<result<std::unique_ptr<connection>>> connect(const bucket_settings& s, const client_options& o);
    asio::awaitable<attempt_outcome> attempt(const bucket_settings& s, const client_options& o, const request& r);
    asio::awaitable<result<response>> perform(const bucket_settings& s, const client_options& o, const request& r);
};

asio::awaitable<result<std::unique_ptr<connection>>> client::impl::connect(const bucket_settings& s,
                                                                            const client_options& o) {
    const auto& server = s.server;
    // A virtual-hosted bucket is its own host name: resolved, named in SNI and checked as such.
    const std::string host = s.path_style ? server.host : s.location.bucket + "." + server.host;
    if (endpoints.empty() || clock_type::now() - resolved_at > std::chrono::seconds(60)) {
        boost::system::error_code aec;
        const auto address = asio::ip::make_address(host, aec);
        std::vector<tcp::endpoint> found;
        if (!aec) {
            found.emplace_back(address, static_cast<unsigned short>(std::stoi(server.port)));
        } else {
            tcp::resolver resolver(ioc);
            auto [ec, results] =
                co_await resolver.async_resolve(host, server.port, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return error{errc::storage_unavailable, "cannot resolve " + host + ": " + ec.message()};
            for (const auto& e : results) found.push_back(e.endpoint());
        }
        endpoints = std::move(found);
        resolved_at = clock_type::now();
    }
    auto c = std::make_unique<connection>();
    if (server.tls)
        c->secure.emplace(ioc, ssl);
    else
        c->plain.emplace(ioc);
    auto& tcp_layer = c->lowest();
    tcp_layer.expires_after(o.connect_timeout);
    auto [cec, ep] = co_await tcp_layer.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    if (cec) {
        endpoints.clear();  // resolve again next time
        const std::string why = cec == beast::error::timeout
                                    ? "no connection within " + std::to_string(o.connect_timeout.count()) + " ms"
                                    : cec.message();
        co_return error{errc::storage_unavailable, "connect to " + host + ":" + server.port + ": " + why};
    }
    tcp_layer.socket().set_option(tcp::no_delay(true));
    if (server.tls) {
        if (!SSL_set_tlsext_host_name(c->secure->native_handle(), host.c_str()))
            co_return error{errc::storage_unavailable, "TLS to " + host + ": cannot set the server name"};
        c->secure->set_verify_callback(asio::ssl::host_name_verification(host));
        auto [hec] = co_await c->secure->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
        if (hec) co_return error{errc::storage_unavailable, "TLS handshake with " + host + ": " + hec.message()};
    }
    co_return c;
}

asio::awaitable<attempt_outcome> client::impl::attempt(const bucket_settings& s, const client_options& o,
                                                        const request& r) {
    std::unique_ptr<connection> c;
    bool reused = false;
    while (!idle.empty() && !c) {
        c = std::move(idle.back());
        idle.pop_back();
        if (!c->lowest().socket().is_open()) c.reset();
    }
    if (c) {
        reused = true;
    } else {
        auto made = co_await connect(s, o);
        if (!made) co_return attempt_outcome{std::nullopt, made.error().message, false};
        c = std::move(*made);
    }

    const auto target = target_of(s, r.key);
    request_to_sign rts;
    rts.method = std::string(bhttp::to_string(r.method));
    rts.path = target.path;
    rts.query = r.query;
    rts.headers.push_back({"host", target.host});
    for (const auto& h : r.headers) rts.headers.push_back(h);
    rts.payload_hash = sha256_hex(r.body);
    sign_s3(s.keys, s.region, std::chrono::system_clock::now(), rts);

    bhttp::request<bhttp::span_body<const std::uint8_t>> req{r.method, encoded_target(target.path, r.query), 11};
    for (const auto& h : rts.headers) req.set(h.name, h.value);
    req.body() = boost::span<const std::uint8_t>(r.body.data(), r.body.size());
    req.keep_alive(true);
    req.prepare_payload();
    if (r.body.empty() && r.method != bhttp::verb::put && r.method != bhttp::verb::post)
        req.erase(bhttp::field::content_length);

    auto& tcp_layer = c->lowest();
    tcp_layer.expires_after(o.request_timeout);
    bhttp::response_parser<bhttp::vector_body<std::uint8_t>> parser;
    parser.body_limit(r.body_limit);
    if (r.method == bhttp::verb::head) parser.skip(true);
    boost::system::error_code ec;
    if (c->secure) {
        std::tie(ec, std::ignore) = co_await bhttp::async_write(*c->secure, req, asio::as_tuple(asio::use_awaitable));
        if (!ec)
            std::tie(ec, std::ignore) =
                co_await bhttp::async_read(*c->secure, c->buffer, parser, asio::as_tuple(asio::use_awaitable));
    } else {
        std::tie(ec, std::ignore) = co_await bhttp::async_write(*c->plain, req, asio::as_tuple(asio::use_awaitable));
        if (!ec)
            std::tie(ec, std::ignore) =
                co_await bhttp::async_read(*c->plain, c->buffer, parser, asio::as_tuple(asio::use_awaitable));
    }
    if (ec) {
        const bool answer_started = parser.got_some();
        c->close();
        std::string why = ec == beast::error::timeout
                              ? "no answer within " + std::to_string(o.request_timeout.count()) + " ms"
                              : ec.message();
        if (ec == bhttp::error::body_limit) why = "the answer is larger than " + std::to_string(r.body_limit) + " bytes";
        co_return attempt_outcome{std::nullopt, why, reused && !answer_started && ec != beast::error::timeout};
    }
    auto msg = parser.release();
    response out;
    out.status = msg.result_int();
    for (const auto& f : msg.base()) out.headers.insert(f.name_string(), f.value());
    out.body = std::move(msg.body());
    if (msg.keep_alive() && idle.size() < o.max_idle_connections) {
        tcp_layer.expires_never();
        idle.push_back(std::move(c));
    } else {
        c->close();
    }
    co_return attempt_outcome{std::move(out), {}, false};
}

asio::awaitable<result<response>> client::impl::perform(const bucket_settings& s, const client_options& o,
                                                         const request& r) {
    const auto started = clock_type::now();
    const std::string where = "bucket '" + s.location.bucket + "' at " + s.server.host + ":" + s.server.port + ": " +
                              std::string(r.op) + (r.key.empty() ? std::string() : " " + r.key);
    auto finish = [&](result<response> out) {
        if (o.observe)
            o.observe(r.op, out.has_value(), std::chrono::duration<double>(clock_type::now() - started).count());
        return out;
    };
    bool stale_retried = false;
    std::string last;
    errc last_code = errc::storage_unavailable;
    const int attempts = r.max_attempts > 0 ? r.max_attempts : o.max_attempts;
    for (int attempt_no = 0; attempt_no < attempts; ++attempt_no) {
        if (attempt_no > 0) {
            // Full jitter: anywhere up to the exponential bound, so clients that failed together
            // do not come back together.
            const auto bound = std::min<long long>(o.backoff_cap.count(), o.backoff_base.count() << std::min(attempt_no, 20));
            std::uniform_int_distribution<long long> pick(0, std::max<long long>(bound, 1));
            asio::steady_timer t(ioc, std::chrono::milliseconds(pick(rng)));
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        auto got = co_await attempt(s, o, r);
        if (!got.answer) {
            if (got.stale && !stale_retried) {
                // The server closed an idle connection as it was reused: not the server failing.
                stale_retried = true;
                --attempt_no;
                continue;
            }
            last = got.failure;
            last_code = errc::storage_unavailable;
            continue;
        }
        auto& a = *got.answer;
        if (a.status < 300 || std::find(r.accept_status.begin(), r.accept_status.end(), a.status) != r.accept_status.end())
            co_return finish(std::move(a));
        const auto body = parse_error(a.text());
        std::string code = body.code;
        if (code.empty() && a.status == 404) code = "NotFound";
        last = std::to_string(a.status) + (code.empty() ? std::string() : " " + code) +
               (body.message.empty() ? std::string() : ": " + body.message);
        if (retryable_status(a.status, code)) {
            last_code = errc::storage_unavailable;
            continue;
        }
        co_return finish(error{a.status == 404 ? errc::not_found : errc::io_error, where + ": " + last});
    }
    co_return finish(error{last_code, where + ": " + last + " (" + std::to_string(attempts) +
                                          (attempts == 1 ? " attempt)" : " attempts)")});
}

client::client(bucket_settings settings, client_options opts)
    : settings_(std::move(settings)), opts_(std::move(opts)), impl_(std::make_unique<impl>(settings_)) {
    impl_->thread = std::thread([this] {
        // A background request's exception is a bug: logged, and the thread goes on serving.
        for (;;) {
            try {
                impl_->ioc.run();
                return;
            } catch (const std::exception& e) {
                log::error("S3 client: unexpected exception", std::string("error=\"") + e.what() + "\"");
            }
        }
    });
}

client::~client() {
    impl_->work.reset();
    asio::post(impl_->ioc, [this] {
        for (auto& c : impl_->idle) c->close();
        impl_->idle.clear();
    });
    impl_->thread.join();
}

asio::awaitable<result<response>> client::send(const request& r) {
    co_return co_await asio::co_spawn(impl_->ioc.get_executor(), impl_->perform(settings_, opts_, r), asio::use_awaitable);
}

result<response> client::send_blocking(const request& r) {
    return asio::co_spawn(impl_->ioc.get_executor(), impl_->perform(settings_, opts_, r), asio::use_future).get();
}

namespace {
// The request is a parameter, so it lives in the coroutine's frame (not in a lambda's captures).
asio::awaitable<void> send_and_log(client::impl& im, const bucket_settings& s, const client_options& o, request r) {
    auto got = co_await im.perform(s, o, r);
    if (!got) log::warn("background S3 request failed", "error=\"" + got.error().message + "\"");
}
}  // namespace

void client::send_detached(request r) {
    asio::co_spawn(impl_->ioc.get_executor(), send_and_log(*impl_, settings_, opts_, std::move(r)), asio::detached);
}

std::string client::presigned_get_url(std::string_view key, std::chrono::seconds expires) const {
    const auto target = target_of(settings_, key);
    request_to_sign rts;
    rts.method = "GET";
    rts.path = target.path;
    rts.headers.push_back({"host", target.host});
    rts.payload_hash = std::string(unsigned_payload);
    return std::string(settings_.server.tls ? "https://" : "http://") + target.host + uri_encode(target.path, true) +
           "?" + presigned_query(settings_.keys, settings_.region, std::chrono::system_clock::now(), expires, rts);
}

asio::any_io_executor client::executor() const noexcept { return impl_->ioc.get_executor(); }

std::string client::describe() const {
    return "bucket '" + settings_.location.bucket + "' at " + std::string(settings_.server.tls ? "https://" : "http://") +
           settings_.server.host + ":" + settings_.server.port;
}

}  // namespace quickthumb::s3
