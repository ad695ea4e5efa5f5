#include "quickthumb/redis_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <charconv>
#include <memory>

namespace quickthumb {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

error url_error(std::string_view url, std::string why) {
    return error{errc::invalid_option,
                 "--redis: " + why + " (expected redis://[[user]:password@]host[:port][/db], got '" + std::string(url) + "')"};
}

// The resolver cannot be cancelled (getaddrinfo runs to its end on a helper thread), so a
// deadline abandons it instead: the handler keeps this state alive and finds nobody waiting.
struct resolve_state {
    explicit resolve_state(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
    tcp::resolver resolver;
    asio::steady_timer done;
    boost::system::error_code ec;
    std::vector<tcp::endpoint> endpoints;
    bool finished = false;
};

}  // namespace

result<redis_url> parse_redis_url(std::string_view text) {
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) return url_error(text, "not a URL");
    const auto& u = *parsed;
    if (u.scheme() == "rediss") return url_error(text, "TLS (rediss://) is not supported");
    if (u.scheme() != "redis") return url_error(text, "the scheme must be redis://");
    if (u.has_query() || u.has_fragment()) return url_error(text, "a query or fragment is not understood");
    redis_url out;
    out.host = u.host_address();
    if (out.host.empty()) return url_error(text, "the host is missing");
    if (u.has_port()) {
        const auto p = u.port();
        unsigned v = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535)
            return url_error(text, "the port must be 1..65535");
        out.port = static_cast<std::uint16_t>(v);
    }
    std::string path = u.path();
    if (!path.empty() && path.front() == '/') path.erase(0, 1);
    if (!path.empty()) {
        int db = -1;
        auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
        if (ec != std::errc{} || end != path.data() + path.size() || db < 0 || db > 1'000'000)
            return url_error(text, "the path must be a database number like /0");
        out.db = db;
    }
    if (u.has_userinfo()) {
        out.user = u.user();
        if (u.has_password()) {
            out.password = u.password();
        } else if (!out.user.empty()) {
            // redis://secret@host is ambiguous (a user or a password?); say which form works.
            return url_error(text, "a user needs a password: write redis://user:password@host or redis://:password@host");
        }
        if (!out.user.empty() && out.password.empty())
            return url_error(text, "a user needs a password");
    }
    return out;
}

std::string to_display_string(const redis_url& url) {
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    std::string auth;
    if (!url.password.empty()) auth = (url.user.empty() ? std::string() : url.user) + ":***@";
    return "redis://" + auth + host + ":" + std::to_string(url.port) + "/" + std::to_string(url.db);
}

redis_client::redis_client(asio::any_io_executor ex, redis_url url, redis_options opts)
    : ex_(std::move(ex)), url_(std::move(url)), opts_(opts), socket_(ex_) {}

void redis_client::close() noexcept {
    boost::system::error_code ignored;
    if (socket_.is_open()) {
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }
}

error redis_client::failure(std::string_view what, const boost::system::error_code& ec) {
    close();
    std::string msg = "redis " + url_.host + ":" + std::to_string(url_.port) + ": " + std::string(what);
    if (ec) msg += ": " + ec.message();
    return error{errc::io_error, std::move(msg)};
}

asio::awaitable<result<void>> redis_client::open_socket(clock_type::time_point deadline) {
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code aec;
    auto address = asio::ip::make_address(url_.host, aec);
    if (!aec) {
        endpoints.emplace_back(address, url_.port);
    } else {
        auto st = std::make_shared<resolve_state>(ex_);
        st->done.expires_at(deadline);
        st->resolver.async_resolve(url_.host, std::to_string(url_.port),
                                   [st](const boost::system::error_code& ec, const tcp::resolver::results_type& res) {
                                       st->ec = ec;
                                       for (const auto& e : res) st->endpoints.push_back(e.endpoint());
                                       st->finished = true;
                                       st->done.cancel();
                                   });
        co_await st->done.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!st->finished) {
            st->resolver.cancel();
            co_return failure("resolving the host timed out", {});
        }
        if (st->ec) co_return failure("cannot resolve the host", st->ec);
        endpoints = std::move(st->endpoints);
        if (endpoints.empty()) co_return failure("the host has no address", {});
    }

    asio::steady_timer timer(ex_, deadline);
    auto r = co_await (asio::async_connect(socket_, endpoints, asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return failure("connect timed out", {});
    auto [ec, ep] = std::get<0>(r);
    if (ec) co_return failure("cannot connect", ec);
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    co_return result<void>{};
}

asio::awaitable<result<void>> redis_client::connect() {
    close();
    parser_.reset();
    const auto deadline = clock_type::now() + opts_.connect_timeout;
    if (auto opened = co_await open_socket(deadline); !opened) co_return opened.error();

    std::vector<resp::command> hello;
    if (!url_.password.empty()) {
        if (url_.user.empty()) hello.push_back(resp::command{"AUTH", url_.password});
        else hello.push_back(resp::command{"AUTH", url_.user, url_.password});
    }
    if (url_.db != 0) hello.push_back(resp::command{"SELECT", std::to_string(url_.db)});
    if (hello.empty()) co_return result<void>{};

    std::string request;
    for (const auto& c : hello) resp::append_command(request, c);
    auto replies = co_await round_trip(std::move(request), hello.size(), deadline);
    if (!replies) co_return replies.error();
    for (std::size_t i = 0; i < hello.size(); ++i) {
        const auto& reply = (*replies)[i];
        // Never echo the command itself: AUTH carries the password.
        if (reply.is_error()) co_return failure("refused " + hello[i][0] + ": " + reply.text, {});
    }
    co_return result<void>{};
}

asio::awaitable<result<std::vector<resp::value>>> redis_client::exec(std::vector<resp::command> commands) {
    if (!socket_.is_open()) co_return error{errc::io_error, "redis: not connected"};
    if (commands.empty()) co_return std::vector<resp::value>{};
    std::string request;
    for (const auto& c : commands) resp::append_command(request, c);
    co_return co_await round_trip(std::move(request), commands.size(), clock_type::now() + opts_.io_timeout);
}

asio::awaitable<boost::system::error_code> redis_client::wait_readable() {
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    co_return ec;
}

asio::awaitable<result<resp::value>> redis_client::exec_one(resp::command cmd) {
    std::vector<resp::command> one;
    one.push_back(std::move(cmd));
    auto r = co_await exec(std::move(one));
    if (!r) co_return r.error();
    co_return std::move(r->front());
}

asio::awaitable<result<std::vector<resp::value>>> redis_client::round_trip(std::string request, std::size_t replies,
                                                                           clock_type::time_point deadline) {
    asio::steady_timer timer(ex_, deadline);
    auto w = co_await (asio::async_write(socket_, asio::buffer(request), asio::as_tuple(asio::use_awaitable)) ||
                       timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (w.index() == 1) co_return failure("timed out sending", {});
    if (auto [ec, n] = std::get<0>(w); ec) co_return failure("send failed", ec);

    std::vector<resp::value> out;
    out.reserve(replies);
    std::vector<char> chunk(read_chunk);
    for (;;) {
        while (out.size() < replies) {
            auto v = parser_.pop();
            if (!v) break;
            out.push_back(std::move(*v));
        }
        if (out.size() == replies) break;
        timer.expires_at(deadline);
        auto r = co_await (socket_.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (r.index() == 1) co_return failure("timed out waiting for replies", {});
        auto [ec, n] = std::get<0>(r);
        if (ec) co_return failure(ec == asio::error::eof ? "the server closed the connection" : "receive failed", ec);
        if (auto fed = parser_.feed(std::string_view(chunk.data(), n)); !fed) {
            close();
            co_return fed.error();
        }
    }
    // Without pub/sub or RESP3 pushes nothing arrives unasked: anything more means we are out of step.
    if (parser_.ready() > 0 || parser_.buffered() > 0) co_return failure("unexpected bytes after the replies", {});
    co_return out;
}

}  // namespace quickthumb
