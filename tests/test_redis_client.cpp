// The Redis client against a real redis-server: pipelines, error replies, AUTH, refusals, deadlines.
#include "quickthumb/redis_client.hpp"
#include "quickthumb/resp.hpp"
#include "support/redis_process.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace qt_test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace resp = quickthumb::resp;
using quickthumb::redis_client;
using quickthumb::redis_url;

namespace {

redis_url local_url(unsigned short port, int db = 0) {
    auto u = quickthumb::parse_redis_url("redis://127.0.0.1:" + std::to_string(port) + "/" + std::to_string(db));
    REQUIRE(u);
    return *u;
}

}  // namespace

TEST_CASE("redis client: PING and a pipeline of SET and GET", "[redis]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    asio::io_context io;
    redis_client client(io.get_executor(), local_url(redis.port(), 3));
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            auto c = co_await client.connect();
            REQUIRE(c);
            CHECK(client.is_open());
            resp::command ping{"PING"};
            auto pong = co_await client.exec_one(std::move(ping));
            REQUIRE(pong);
            CHECK(pong->str() == "PONG");

            // 200 commands in one write; the replies come back in order.
            std::vector<resp::command> cmds;
            for (int i = 0; i < 100; ++i) cmds.push_back(resp::command{"SET", "k" + std::to_string(i), std::string(i * 50, 'v')});
            for (int i = 0; i < 100; ++i) cmds.push_back(resp::command{"GET", "k" + std::to_string(i)});
            auto replies = co_await client.exec(std::move(cmds));
            REQUIRE(replies);
            REQUIRE(replies->size() == 200);
            for (int i = 0; i < 100; ++i) CHECK((*replies)[i].str() == "OK");
            for (int i = 0; i < 100; ++i) CHECK((*replies)[100 + i] == resp::value::bulk(std::string(i * 50, 'v')));
            resp::command get_missing{"GET", "nope"};
            auto missing = co_await client.exec_one(std::move(get_missing));
            REQUIRE(missing);
            CHECK(missing->is_null());
            // SELECT from the URL: this connection is on database 3.
            resp::command info{"CLIENT", "INFO"};
            auto me = co_await client.exec_one(std::move(info));
            REQUIRE(me);
            CHECK_THAT(me->text, Catch::Contains(" db=3 "));
        }(),
        10s);
    // ... so database 0 has none of the keys.
    CHECK(redis_command(redis.port(), {"GET", "k1"}).is_null());
}

TEST_CASE("redis client: an error reply is a value and the connection stays usable", "[redis]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    asio::io_context io;
    redis_client client(io.get_executor(), local_url(redis.port()));
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            REQUIRE(co_await client.connect());
            std::vector<resp::command> cmds;
            cmds.push_back(resp::command{"SET", "s", "text"});
            cmds.push_back(resp::command{"INCR", "s"});
            cmds.push_back(resp::command{"NOSUCHCOMMAND"});
            cmds.push_back(resp::command{"GET", "s"});
            auto replies = co_await client.exec(std::move(cmds));
            REQUIRE(replies);
            REQUIRE(replies->size() == 4);
            CHECK((*replies)[0].str() == "OK");
            CHECK((*replies)[1].is_error());
            CHECK_THAT((*replies)[1].text, Catch::Contains("not an integer"));
            CHECK((*replies)[2].is_error());
            CHECK((*replies)[3].str() == "text");
            CHECK(client.is_open());
        }(),
        10s);
}

TEST_CASE("redis client: AUTH from the URL and a wrong password", "[redis]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis", {"--requirepass", "s3cret"});
    asio::io_context io;
    auto good = quickthumb::parse_redis_url("redis://:s3cret@127.0.0.1:" + std::to_string(redis.port()) + "/1");
    auto bad = quickthumb::parse_redis_url("redis://:wrong@127.0.0.1:" + std::to_string(redis.port()) + "/1");
    REQUIRE(good);
    REQUIRE(bad);
    redis_client ok_client(io.get_executor(), *good);
    redis_client bad_client(io.get_executor(), *bad);
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            auto c = co_await ok_client.connect();
            REQUIRE(c);
            resp::command ping{"PING"};
            auto pong = co_await ok_client.exec_one(std::move(ping));
            REQUIRE(pong);
            CHECK(pong->str() == "PONG");
            auto refused = co_await bad_client.connect();
            REQUIRE_FALSE(refused);
            CHECK_THAT(refused.error().message, Catch::Contains("AUTH"));
            CHECK_THAT(refused.error().message, !Catch::Contains("wrong"));  // the password is never echoed
            CHECK_FALSE(bad_client.is_open());
        }(),
        10s);
}

TEST_CASE("redis client: connection refused is a value", "[redis]") {
    const auto port = free_tcp_port();  // nobody listens there
    asio::io_context io;
    redis_client client(io.get_executor(), local_url(port));
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            auto c = co_await client.connect();
            REQUIRE_FALSE(c);
            CHECK_THAT(c.error().message, Catch::Contains("cannot connect"));
            CHECK_FALSE(client.is_open());
            resp::command ping{"PING"};
            auto r = co_await client.exec_one(std::move(ping));
            REQUIRE_FALSE(r);
            CHECK_THAT(r.error().message, Catch::Contains("not connected"));
        }(),
        10s);
}

TEST_CASE("redis client: a server that never answers hits the deadline", "[redis]") {
    // A listener that accepts (the kernel does, from the backlog) and never says a word.
    asio::io_context io;
    asio::ip::tcp::acceptor silent(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    quickthumb::redis_options opts;
    opts.io_timeout = 300ms;
    opts.connect_timeout = 2s;
    redis_client client(io.get_executor(), local_url(silent.local_endpoint().port()), opts);
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            REQUIRE(co_await client.connect());  // no AUTH/SELECT: the TCP connect is all
            const auto t0 = std::chrono::steady_clock::now();
            resp::command ping{"PING"};
            auto r = co_await client.exec_one(std::move(ping));
            const auto took = std::chrono::steady_clock::now() - t0;
            REQUIRE_FALSE(r);
            CHECK_THAT(r.error().message, Catch::Contains("timed out"));
            CHECK(took >= 250ms);
            CHECK(took < 5s);
            CHECK_FALSE(client.is_open());  // out of step now: closed
        }(),
        10s);

    // The same during connect: SELECT is never answered.
    redis_client selecting(io.get_executor(), local_url(silent.local_endpoint().port(), 2),
                           quickthumb::redis_options{300ms, 5s});
    run_for(
        io,
        [&]() -> asio::awaitable<void> {
            auto c = co_await selecting.connect();
            REQUIRE_FALSE(c);
            CHECK_THAT(c.error().message, Catch::Contains("timed out"));
        }(),
        10s);
}
