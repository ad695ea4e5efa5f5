#pragma once
// A small Redis connection on Asio coroutines: connect (with AUTH and SELECT from the URL), then
// pipelines: all commands of one exec() go out in one write and their replies are read back in
// order. Every step has a deadline, and every failure comes back as a value; after a transport
// failure or a timeout the connection is closed (the reply stream can no longer be matched to
// the requests) and connect() must be called again.
//
// Not thread-safe: one exec at a time, from coroutines on the client's executor (the network
// io_context or a strand of it). It never blocks a thread.
#include "quickthumb/error.hpp"
#include "quickthumb/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb {

struct redis_url {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    int db = 0;
    std::string user;      // ACL user; empty = the default user
    std::string password;  // empty = no AUTH
};

// redis://[[user]:password@]host[:port][/db]. Anything else (rediss://, a path that is not a
// number, a query) is refused with a message that says what was expected.
result<redis_url> parse_redis_url(std::string_view url);

// The URL for logs and readiness: the password is never shown.
std::string to_display_string(const redis_url& url);

struct redis_options {
    std::chrono::milliseconds connect_timeout{2000};  // resolve + TCP connect + AUTH/SELECT
    std::chrono::milliseconds io_timeout{5000};       // one exec: the write and all its replies
};

class redis_client {
public:
    redis_client(boost::asio::any_io_executor ex, redis_url url, redis_options opts = {});
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    // Opens the connection (closing any previous one), then AUTH and SELECT when the URL asks.
    boost::asio::awaitable<result<void>> connect();

    // Sends the commands in one write and returns one reply per command, in order. A Redis error
    // reply (-ERR ...) is a value in the vector, not a failure: only the transport fails.
    boost::asio::awaitable<result<std::vector<resp::value>>> exec(std::vector<resp::command> commands);

    // One command; its reply (which may be an error value).
    boost::asio::awaitable<result<resp::value>> exec_one(resp::command cmd);

    // Completes when the idle connection becomes readable. With no command in flight a RESP2
    // server sends nothing, so that means it closed the connection (or broke protocol): the way
    // to notice a dead server at once instead of at the next command. Cancellable (|| a timer).
    boost::asio::awaitable<boost::system::error_code> wait_readable();

    bool is_open() const noexcept { return socket_.is_open(); }
    // Closes the socket; an exec in flight completes with an error. Safe to call twice.
    void close() noexcept;

    const redis_url& url() const noexcept { return url_; }

private:
    boost::asio::awaitable<result<void>> open_socket(std::chrono::steady_clock::time_point deadline);
    boost::asio::awaitable<result<std::vector<resp::value>>> round_trip(std::string request, std::size_t replies,
                                                                        std::chrono::steady_clock::time_point deadline);
    error failure(std::string_view what, const boost::system::error_code& ec);

    boost::asio::any_io_executor ex_;
    redis_url url_;
    redis_options opts_;
    boost::asio::ip::tcp::socket socket_;
    resp::parser parser_;
};

}  // namespace quickthumb
