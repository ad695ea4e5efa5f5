// The Redis part: RESP (pure), the client against a real redis-server, and the mirror seen from
// outside (the real binary with --redis, a real redis-server, and what the stream holds).
#include "quickthumb/image.hpp"
#include "quickthumb/redis_client.hpp"
#include "quickthumb/resp.hpp"
#include "support/redis_process.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <csignal>
#include <set>

using namespace qt_test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
namespace resp = quickthumb::resp;
using quickthumb::redis_client;
using quickthumb::redis_url;

// ---------------------------------------------------------------------------------------------
// RESP
// ---------------------------------------------------------------------------------------------

namespace {

// Feeds `bytes` whole and expects exactly these values.
std::vector<resp::value> parse_all(std::string_view bytes) {
    resp::parser p;
    auto fed = p.feed(bytes);
    REQUIRE(fed);
    std::vector<resp::value> out;
    while (auto v = p.pop()) out.push_back(std::move(*v));
    CHECK(p.buffered() == 0);
    return out;
}

std::string parse_error(std::string_view bytes, resp::limits lim = {}) {
    resp::parser p(lim);
    auto fed = p.feed(bytes);
    REQUIRE_FALSE(fed);
    CHECK(p.failed());
    CHECK(p.ready() == 0);
    return fed.error().message;
}

}  // namespace

TEST_CASE("resp: commands are arrays of bulk strings", "[redis][resp]") {
    CHECK(resp::serialize({"PING"}) == "*1\r\n$4\r\nPING\r\n");
    CHECK(resp::serialize({"SET", "k", ""}) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    // Binary-safe: CRLF and NUL inside an argument are just bytes.
    const std::string odd("a\r\nb\0c", 6);
    CHECK(resp::serialize({"SET", odd}) == std::string("*2\r\n$3\r\nSET\r\n$6\r\na\r\nb\0c\r\n", 25));
    // A pipeline is several commands appended into one buffer.
    std::string pipeline;
    resp::append_command(pipeline, {"INCR", "n"});
    resp::append_command(pipeline, {"GET", "n"});
    CHECK(pipeline == "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET\r\n$1\r\nn\r\n");
    // What the serializer writes, the parser reads back as an array of bulk strings.
    auto back = parse_all(resp::serialize({"XADD", "s", "*", "job", odd}));
    REQUIRE(back.size() == 1);
    REQUIRE(back[0].is_array());
    REQUIRE(back[0].elements.size() == 5);
    CHECK(back[0].elements[4] == resp::value::bulk(odd));
}

TEST_CASE("resp: every RESP2 type", "[redis][resp]") {
    auto v = parse_all("+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n");
    REQUIRE(v.size() == 9);
    CHECK(v[0] == resp::value::simple("OK"));
    CHECK(v[0].str() == "OK");
    CHECK(v[1].is_error());
    CHECK(v[1].text == "ERR wrong");
    CHECK(v[1].str() == std::nullopt);
    CHECK(v[2] == resp::value::number(42));
    CHECK(v[3].integer == -7);
    CHECK(v[4] == resp::value::bulk("hello"));
    CHECK(v[5] == resp::value::bulk(""));
    CHECK(v[6].is_null());
    CHECK(v[7].is_null());
    CHECK(v[8].is_array());
    CHECK(v[8].elements.empty());
}

TEST_CASE("resp: nested arrays with nulls and errors inside", "[redis][resp]") {
    // The shape of an XREADGROUP reply, with a deleted entry ([id, nil]).
    const std::string reply =
        "*1\r\n*2\r\n$15\r\nquickthumb:jobs\r\n*2\r\n"
        "*2\r\n$3\r\n1-0\r\n*2\r\n$3\r\njob\r\n$4\r\nabcd\r\n"
        "*2\r\n$3\r\n2-0\r\n*-1\r\n";
    auto v = parse_all(reply + "*3\r\n:1\r\n-ERR inside\r\n$-1\r\n");
    REQUIRE(v.size() == 2);
    CHECK(resp::to_string(v[0]) == R"([["quickthumb:jobs", [["1-0", ["job", "abcd"]], ["2-0", (nil)]]]])");
    const auto& entries = v[0].elements[0].elements[1];
    CHECK(entries.elements[1].elements[1].is_null());
    CHECK(resp::to_string(v[1]) == "[1, (error) ERR inside, (nil)]");
}

TEST_CASE("resp: a reply split at every byte arrives whole and once", "[redis][resp]") {
    const std::string stream =
        "+OK\r\n:123456789\r\n$12\r\nhello\r\nworld\r\n*2\r\n*1\r\n$1\r\nx\r\n$-1\r\n-ERR x\r\n%1\r\n+k\r\n#t\r\n";
    const auto expected = parse_all(stream);
    REQUIRE(expected.size() == 6);
    CHECK(expected[2].text == "hello\r\nworld");  // a bulk string may hold CRLF
    // One byte at a time.
    {
        resp::parser p;
        std::vector<resp::value> got;
        for (char c : stream) {
            REQUIRE(p.feed(std::string_view(&c, 1)));
            while (auto v = p.pop()) got.push_back(std::move(*v));
        }
        CHECK(got == expected);
        CHECK(p.buffered() == 0);
    }
    // Every split into two pieces.
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        resp::parser p;
        REQUIRE(p.feed(std::string_view(stream).substr(0, cut)));
        std::vector<resp::value> got;
        while (auto v = p.pop()) got.push_back(std::move(*v));
        REQUIRE(p.feed(std::string_view(stream).substr(cut)));
        while (auto v = p.pop()) got.push_back(std::move(*v));
        INFO("cut at " << cut);
        CHECK(got == expected);
    }
}

TEST_CASE("resp: RESP3 types", "[redis][resp]") {
    auto v = parse_all("_\r\n#f\r\n,3.25\r\n(12345678901234567890\r\n!9\r\nSYNTAX xy\r\n=8\r\ntxt:abcd\r\n"
                       "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n~2\r\n:1\r\n:2\r\n>2\r\n+msg\r\n+hi\r\n");
    REQUIRE(v.size() == 9);
    CHECK(v[0].is_null());
    CHECK(v[1].type == resp::kind::boolean);
    CHECK(v[1].integer == 0);
    CHECK(v[2].type == resp::kind::double_value);
    CHECK(v[2].text == "3.25");
    CHECK(v[3].type == resp::kind::big_number);
    CHECK(v[3].text == "12345678901234567890");
    CHECK(v[4].is_error());
    CHECK(v[4].text == "SYNTAX xy");
    CHECK(v[5].str() == "abcd");
    CHECK(v[6].type == resp::kind::map);
    CHECK(v[6].elements.size() == 4);
    CHECK(resp::to_string(v[6]) == "{a: 1, b: 2}");
    CHECK(v[7].is_array());
    CHECK(v[8].is_array());
}

TEST_CASE("resp: absurd lengths and garbage are protocol errors", "[redis][resp]") {
    CHECK_THAT(parse_error("$99999999999999\r\n"), Catch::Contains("over the limit"));
    CHECK_THAT(parse_error("*99999999999\r\n"), Catch::Contains("over the limit"));
    CHECK_THAT(parse_error("%600000\r\n"), Catch::Contains("over the limit"));  // 2 elements per pair
    CHECK_THAT(parse_error("$-2\r\n"), Catch::Contains("negative"));
    CHECK_THAT(parse_error("*-5\r\n"), Catch::Contains("negative"));
    CHECK_THAT(parse_error("$abc\r\n"), Catch::Contains("bulk length"));
    CHECK_THAT(parse_error("$1\r\nab\r\n"), Catch::Contains("CRLF"));
    CHECK_THAT(parse_error(":12a\r\n"), Catch::Contains("integer"));
    CHECK_THAT(parse_error(":99999999999999999999\r\n"), Catch::Contains("integer"));
    CHECK_THAT(parse_error("?what\r\n"), Catch::Contains("unexpected type byte"));
    CHECK_THAT(parse_error(std::string("\x01oops\r\n", 7)), Catch::Contains("0x01"));
    CHECK_THAT(parse_error("|1\r\n+a\r\n+b\r\n+c\r\n"), Catch::Contains("attributes"));
    // A line that never ends is refused once it passes the line limit, not buffered forever.
    resp::limits small;
    small.max_line = 16;
    std::string unending(101, 'a');
    unending[0] = '+';
    CHECK_THAT(parse_error(unending, small), Catch::Contains("line longer"));
    // Nesting is bounded.
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "*1\r\n";
    CHECK_THAT(parse_error(deep), Catch::Contains("nesting"));
    // Limits are the caller's: a smaller bulk limit refuses what the default takes.
    resp::limits tiny;
    tiny.max_bulk = 4;
    CHECK_THAT(parse_error("$5\r\nhello\r\n", tiny), Catch::Contains("over the limit"));
    // Once failed, the parser stays failed: the stream is out of step with the requests.
    resp::parser p;
    REQUIRE_FALSE(p.feed("$-9\r\n"));
    CHECK_FALSE(p.feed("+OK\r\n"));
    CHECK(p.ready() == 0);
    p.reset();
    REQUIRE(p.feed("+OK\r\n"));
    CHECK(p.pop() == resp::value::simple("OK"));
}

TEST_CASE("redis url: the forms accepted and the ones refused", "[redis][resp]") {
    auto plain = quickthumb::parse_redis_url("redis://127.0.0.1:6390/2");
    REQUIRE(plain);
    CHECK(plain->host == "127.0.0.1");
    CHECK(plain->port == 6390);
    CHECK(plain->db == 2);
    CHECK(plain->password.empty());

    auto defaults = quickthumb::parse_redis_url("redis://cache.internal");
    REQUIRE(defaults);
    CHECK(defaults->host == "cache.internal");
    CHECK(defaults->port == 6379);
    CHECK(defaults->db == 0);

    auto auth = quickthumb::parse_redis_url("redis://app:s%40cret@[::1]:7000/0");
    REQUIRE(auth);
    CHECK(auth->host == "::1");
    CHECK(auth->user == "app");
    CHECK(auth->password == "s@cret");
    CHECK(quickthumb::to_display_string(*auth) == "redis://app:***@[::1]:7000/0");

    auto password_only = quickthumb::parse_redis_url("redis://:pw@localhost/1");
    REQUIRE(password_only);
    CHECK(password_only->user.empty());
    CHECK(password_only->password == "pw");

    auto refused = [](std::string_view url) {
        auto r = quickthumb::parse_redis_url(url);
        REQUIRE_FALSE(r);
        return r.error().message;
    };
    CHECK_THAT(refused("rediss://host"), Catch::Contains("TLS"));
    CHECK_THAT(refused("http://host"), Catch::Contains("redis://"));
    CHECK_THAT(refused("redis://host/abc"), Catch::Contains("database number"));
    CHECK_THAT(refused("redis://host:0"), Catch::Contains("port"));
    CHECK_THAT(refused("redis://host:99999"), Catch::Contains("port"));
    CHECK_THAT(refused("redis://user@host"), Catch::Contains("password"));
    CHECK_THAT(refused("redis://host/0?x=1"), Catch::Contains("query"));
    CHECK_THAT(refused("redis://"), Catch::Contains("host"));
}

// ---------------------------------------------------------------------------------------------
// The client against a real redis-server
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The mirror, from outside: the real binary with --redis and a real redis-server
// ---------------------------------------------------------------------------------------------

namespace {

constexpr const char* stream = "quickthumb:jobs";
constexpr const char* group = "quickthumb";

const std::string& test_jpeg() {
    // Large enough that a worker takes a moment over it, so a kill lands mid-load.
    static const std::string bytes = [] {
        quickthumb::image::pixels p{1600, 1200, 3, std::vector<std::uint8_t>(1600 * 1200 * 3)};
        for (int y = 0; y < p.height; ++y)
            for (int x = 0; x < p.width; ++x) {
                auto* px = &p.data[(static_cast<std::size_t>(y) * p.width + x) * 3];
                px[0] = static_cast<std::uint8_t>(x * 255 / p.width);
                px[1] = static_cast<std::uint8_t>(y * 255 / p.height);
                px[2] = static_cast<std::uint8_t>((x ^ y) & 255);
            }
        auto enc = quickthumb::image::encode_jpeg(p, 85);
        if (!enc) throw std::runtime_error(enc.error().message);
        return std::string(enc->begin(), enc->end());
    }();
    return bytes;
}

launch_options quiet() {
    launch_options o;
    o.drain_output = true;  // one log line per job: never let the pipe fill
    return o;
}

// Uploads n jobs, up to 8 files per request; every request must get 202. Returns the job ids.
std::vector<std::string> upload_jobs(unsigned short port, int n) {
    std::vector<std::string> ids;
    while (static_cast<int>(ids.size()) < n) {
        const int k = std::min(8, n - static_cast<int>(ids.size()));
        std::vector<form_file> files;
        for (int i = 0; i < k; ++i) {
            std::string name = std::to_string(ids.size() + static_cast<std::size_t>(i));
            name += ".jpg";
            files.push_back({"file", std::move(name), "image/jpeg", test_jpeg()});
        }
        auto r = upload(port, files);
        REQUIRE(r.status == 202);
        auto body = json::parse(r.body).as_object();
        if (k == 1) {
            ids.emplace_back(body.at("id").as_string());
        } else {
            for (const auto& j : body.at("jobs").as_array()) ids.emplace_back(j.at("id").as_string());
        }
    }
    return ids;
}

// Waits until every job is final; returns how many succeeded.
std::size_t wait_all_final(unsigned short port, const std::vector<std::string>& ids, std::chrono::seconds timeout) {
    std::set<std::string> open(ids.begin(), ids.end());
    std::size_t succeeded = 0;
    eventually(
        [&] {
            for (auto it = open.begin(); it != open.end();) {
                auto r = http_request(port, "GET", "/api/v1/jobs/" + *it);
                REQUIRE(r.status == 200);
                const std::string state(json::parse(r.body).at("state").as_string());
                if (state == "queued" || state == "processing") return false;
                if (state == "succeeded") ++succeeded;
                it = open.erase(it);
            }
            return true;
        },
        timeout);
    INFO(open.size() << " jobs not final");
    REQUIRE(open.empty());
    return succeeded;
}

struct stream_view {
    std::int64_t length = 0;
    std::int64_t entries_added = 0;
    std::int64_t pending = 0;
    std::map<std::string, std::int64_t> pending_by_consumer;
};

stream_view look(unsigned short redis_port) {
    stream_view v;
    auto info = redis_command(redis_port, {"XINFO", "STREAM", stream});
    if (info.is_error()) return v;  // no stream (yet)
    auto m = as_map(info);
    v.length = m.at("length").integer;
    v.entries_added = m.at("entries-added").integer;
    auto pending = redis_command(redis_port, {"XPENDING", stream, group});
    if (pending.is_error()) return v;
    v.pending = pending.elements.at(0).integer;
    if (pending.elements.at(3).is_array())
        for (const auto& c : pending.elements.at(3).elements)
            v.pending_by_consumer[c.elements.at(0).text] = std::stoll(c.elements.at(1).text);
    return v;
}

std::string describe(const stream_view& v) {
    std::string out = "length=" + std::to_string(v.length) + " entries-added=" + std::to_string(v.entries_added) +
                      " pending=" + std::to_string(v.pending);
    for (const auto& [c, n] : v.pending_by_consumer) out += " " + c + ":" + std::to_string(n);
    return out;
}

json::object readyz(unsigned short port, int expect_status = 200) {
    auto r = http_request(port, "GET", "/readyz");
    CHECK(r.status == expect_status);
    return json::parse(r.body).as_object();
}

std::string redis_state(unsigned short port) { return std::string(readyz(port).at("redis").as_string()); }

// Waits for the stream to settle in a state; fails with what it last saw.
void expect_stream(unsigned short redis_port, const std::function<bool(const stream_view&)>& wanted,
                   std::chrono::seconds timeout = 30s) {
    stream_view last;
    const bool ok = eventually(
        [&] {
            last = look(redis_port);
            return wanted(last);
        },
        timeout);
    INFO("the stream: " << describe(last));
    REQUIRE(ok);
}

}  // namespace

TEST_CASE("readyz: ready with Redis off when --redis is not given", "[redis][http]") {
    temp_dir dir;
    server_process server(dir.path() / "data");
    auto r = readyz(server.port());
    CHECK(r.at("status") == "ready");
    CHECK(r.at("store") == "ok");
    CHECK(r.at("redis") == "off");
    CHECK(http_request(server.port(), "POST", "/readyz").status == 405);
}

TEST_CASE("redis mirror: a bad --redis URL stops the start with a clear message", "[redis]") {
    temp_dir dir;
    CHECK_THROWS_WITH(server_process(dir.path() / "data", {"--redis", "redis://127.0.0.1:6379/notanumber"}),
                      Catch::Contains("database number"));
}

TEST_CASE("redis mirror: every accepted job is added and acknowledged", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "2"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    const auto ids = upload_jobs(server.port(), 30);
    CHECK(wait_all_final(server.port(), ids, 120s) == ids.size());
    // Each job was added exactly once, and every entry was acknowledged and deleted.
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 0 && v.length == 0 && v.entries_added >= 30; });
    CHECK(look(redis.port()).entries_added == 30);
    auto ready = readyz(server.port());
    CHECK(ready.at("status") == "ready");
    CHECK(ready.at("redis") == "up");
    CHECK_THAT(std::string(ready.at("redis_consumer").as_string()), Catch::StartsWith("qt-"));
    CHECK_THAT(server.output(), !Catch::Contains("maxmemory-policy"));  // noeviction: nothing to warn about
}

TEST_CASE("redis mirror: with workers paused the stream holds every job pending", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "0"}, quiet());
    const auto ids = upload_jobs(server.port(), 25);
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 25; });
    const auto v = look(redis.port());
    CHECK(v.length == 25);
    CHECK(v.entries_added == 25);
    const std::string consumer(readyz(server.port()).at("redis_consumer").as_string());
    REQUIRE(v.pending_by_consumer.size() == 1);
    CHECK(v.pending_by_consumer.begin()->first == consumer);
    CHECK(v.pending_by_consumer.begin()->second == 25);
    // The entries name the jobs: each job once.
    auto range = redis_command(redis.port(), {"XRANGE", stream, "-", "+"});
    std::set<std::string> named;
    for (const auto& e : range.elements) named.insert(e.elements.at(1).elements.at(1).text);
    CHECK(named == std::set<std::string>(ids.begin(), ids.end()));
}

TEST_CASE("redis mirror: Redis killed mid-load and restarted on its data", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    auto ids = upload_jobs(server.port(), 16);
    redis.kill();
    // Uploads go on (every request above and below REQUIREs 202), and readiness says degraded.
    auto more = upload_jobs(server.port(), 16);
    ids.insert(ids.end(), more.begin(), more.end());
    REQUIRE(eventually([&] { return redis_state(server.port()).starts_with("down: "); }, 20s));
    CHECK(readyz(server.port()).at("status") == "ready");
    redis.start();
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 30s));
    more = upload_jobs(server.port(), 8);
    ids.insert(ids.end(), more.begin(), more.end());
    CHECK(wait_all_final(server.port(), ids, 180s) == ids.size());
    // Redis kept what it acknowledged (fsync always); what it missed was added after it came
    // back: every job at least once (one whose reply the kill cut off may be there twice).
    expect_stream(redis.port(), [&](const stream_view& v) {
        return v.pending == 0 && v.length == 0 && v.entries_added >= static_cast<std::int64_t>(ids.size());
    });
    CHECK_THAT(server.output(), Catch::Contains("redis mirror down"));
}

TEST_CASE("redis mirror: Redis killed mid-load and restarted empty", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    auto ids = upload_jobs(server.port(), 16);
    redis.kill();
    auto more = upload_jobs(server.port(), 16);
    ids.insert(ids.end(), more.begin(), more.end());
    redis.start(dir.path() / "redis-empty");  // its data is gone: no stream, no group
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 30s));
    more = upload_jobs(server.port(), 8);
    ids.insert(ids.end(), more.begin(), more.end());
    CHECK(wait_all_final(server.port(), ids, 180s) == ids.size());
    expect_stream(redis.port(), [&](const stream_view& v) { return v.pending == 0 && v.length == 0 && v.entries_added >= 8; });
}

TEST_CASE("redis mirror: Redis restarted empty gets every waiting job again", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    std::vector<std::string> ids;
    {
        // Nothing runs (--workers 0), so every accepted job must be pending in the stream.
        server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "0"}, quiet());
        ids = upload_jobs(server.port(), 10);
        expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 10; });
        redis.kill();
        auto more = upload_jobs(server.port(), 10);
        ids.insert(ids.end(), more.begin(), more.end());
        redis.start(dir.path() / "redis-empty");
        // The lost ten are added again, the ten accepted meanwhile added: each exactly once.
        expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 20; });
        const auto v = look(redis.port());
        CHECK(v.length == 20);
        CHECK(v.entries_added == 20);
        CHECK(v.pending_by_consumer.size() == 1);
        server.stop(SIGKILL);
    }
    // The same data directory with workers: its consumer finds its entries and acknowledges them.
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "2"}, quiet());
    CHECK(wait_all_final(server.port(), ids, 120s) == ids.size());
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 0 && v.length == 0; });
    CHECK(look(redis.port()).entries_added == 20);  // found pending, not added again
}

TEST_CASE("redis mirror: the service killed mid-load and restarted on its data", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    std::vector<std::string> ids;
    {
        server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
        ids = upload_jobs(server.port(), 30);
        server.stop(SIGKILL);
    }
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "2"}, quiet());
    wait_all_final(server.port(), ids, 120s);
    expect_stream(redis.port(), [&](const stream_view& v) {
        return v.pending == 0 && v.length == 0 && v.entries_added >= static_cast<std::int64_t>(ids.size());
    });
}

TEST_CASE("redis mirror: a dead consumer's entries are claimed", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    std::vector<std::string> ids;
    std::string dead;
    {
        server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "0"}, quiet());
        ids = upload_jobs(server.port(), 12);
        expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 12; });
        dead = std::string(readyz(server.port()).at("redis_consumer").as_string());
        server.stop(SIGKILL);
    }
    {
        // A replacement instance on the same jobs under another consumer name (its data
        // directory restored without the mirror's settings, say): the old name is a dead consumer.
        SQLite::Database db((dir.path() / "data" / "quickthumb.db").string(), SQLite::OPEN_READWRITE);
        db.exec("DELETE FROM meta WHERE key='redis.consumer'");
    }
    server_process server(dir.path() / "data",
                          {"--redis", redis.url(), "--workers", "2", "--redis-claim-idle", "1ms"}, quiet());
    std::string alive;
    REQUIRE(eventually(
        [&] {
            auto r = readyz(server.port());
            if (auto it = r.find("redis_consumer"); it != r.end()) alive = std::string(it->value().as_string());
            return !alive.empty();
        },
        20s));
    CHECK(alive != dead);
    CHECK(wait_all_final(server.port(), ids, 120s) == ids.size());
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 0 && v.length == 0; });
    // Claimed (XAUTOCLAIM), not added again: still twelve entries ever.
    CHECK(look(redis.port()).entries_added == 12);
    auto consumers = redis_command(redis.port(), {"XINFO", "CONSUMERS", stream, group});
    std::map<std::string, std::int64_t> pending_of;
    for (const auto& c : consumers.elements) {
        auto m = as_map(c);
        pending_of[m.at("name").text] = m.at("pending").integer;
    }
    REQUIRE(pending_of.count(dead) == 1);
    CHECK(pending_of.at(dead) == 0);
}

TEST_CASE("redis mirror: an evicting Redis gets a loud warning", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis", {"--maxmemory-policy", "allkeys-lru"});
    server_process server(dir.path() / "data", {"--redis", redis.url()}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    const auto out = server.output();
    CHECK_THAT(out, Catch::Contains("level=warn") && Catch::Contains("maxmemory-policy") &&
                        Catch::Contains("policy=allkeys-lru") && Catch::Contains("noeviction"));
    // Degraded durability is not unreadiness: it still works.
    auto ids = upload_jobs(server.port(), 2);
    wait_all_final(server.port(), ids, 60s);
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 0 && v.entries_added == 2; });
}

TEST_CASE("redis mirror: readyz says when Redis is down and stays ready", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    redis.kill();
    REQUIRE(eventually([&] { return redis_state(server.port()).starts_with("down: "); }, 20s));
    auto r = readyz(server.port(), 200);
    CHECK(r.at("status") == "ready");
    CHECK(r.at("store") == "ok");
    CHECK_THAT(std::string(r.at("redis").as_string()), Catch::Contains("127.0.0.1"));  // the reason names the server
    // A job accepted and finished while Redis is away...
    auto ids = upload_jobs(server.port(), 1);
    wait_all_final(server.port(), ids, 60s);
    redis.start();
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 30s));
    // ... is mirrored once Redis is back (added and acknowledged at once).
    expect_stream(redis.port(), [](const stream_view& v) { return v.pending == 0 && v.entries_added >= 1; });
}

TEST_CASE("redis mirror: a frozen Redis holds up neither uploads nor work", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    auto ids = upload_jobs(server.port(), 4);
    redis.pause();  // connections stay open, nothing is answered: every command hits its deadline
    const auto t0 = std::chrono::steady_clock::now();
    auto more = upload_jobs(server.port(), 12);
    ids.insert(ids.end(), more.begin(), more.end());
    CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // far below the mirror's 5 s deadline
    CHECK(wait_all_final(server.port(), ids, 120s) == ids.size());
    REQUIRE(eventually([&] { return redis_state(server.port()).find("timed out") != std::string::npos; }, 30s));
    redis.resume();
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 30s));
    expect_stream(redis.port(), [&](const stream_view& v) {
        return v.pending == 0 && v.length == 0 && v.entries_added >= static_cast<std::int64_t>(ids.size());
    });
}

TEST_CASE("redis mirror: SIGTERM stops cleanly whatever Redis is doing", "[redis][e2e]") {
    QT_REQUIRE_REDIS_SERVER();
    temp_dir dir;
    redis_process redis(dir.path() / "redis");
    server_process server(dir.path() / "data", {"--redis", redis.url(), "--workers", "1"}, quiet());
    REQUIRE(eventually([&] { return redis_state(server.port()) == "up"; }, 20s));
    auto ids = upload_jobs(server.port(), 3);
    wait_all_final(server.port(), ids, 60s);
    SECTION("up") {}
    SECTION("down: the mirror waits to reconnect") {
        redis.kill();
        REQUIRE(eventually([&] { return redis_state(server.port()).starts_with("down: "); }, 20s));
    }
    SECTION("frozen: a command is in flight") {
        redis.pause();
        upload_jobs(server.port(), 1);  // gives the mirror something to send
    }
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(server.stop(SIGTERM) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    const auto out = server.output();
    CHECK_THAT(out, Catch::Contains("msg=\"stopped\""));
    CHECK_THAT(out, !Catch::Contains("AddressSanitizer") && !Catch::Contains("runtime error"));
    redis.resume();
}
