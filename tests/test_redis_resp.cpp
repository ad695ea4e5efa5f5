// RESP, pure: the command encoder, the reply parser (RESP2, RESP3, splits, errors) and redis:// URLs.
#include "quickthumb/redis_client.hpp"
#include "quickthumb/resp.hpp"

#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resp = quickthumb::resp;

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
