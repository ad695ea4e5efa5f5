// Abuse limits: the token bucket, the connection counter and the X-Forwarded-For parser as pure
// logic (an injected time, no sockets), then the real binary: 429 + Retry-After on uploads over a
// client's rate, 503 on connections over the caps, X-Forwarded-For only with --trust-proxy.
#include "http/rate_limiter.hpp"
#include "quickthumb/config.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <thread>

using namespace qt_test;
using quickthumb::http::connection_counter;
using quickthumb::http::rate_limiter;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

const rate_limiter::clock::time_point t0{};

quickthumb::serve_config parse_serve(std::vector<std::string> args) {
    args.insert(args.begin(), "serve");
    return quickthumb::parse_command_line(args, [](const std::string&) { return std::nullopt; }).serve;
}

}  // namespace

TEST_CASE("rate limiter: a burst is allowed and the next upload waits for a token", "[limits][unit]") {
    rate_limiter limiter(0.5, 3);
    for (int i = 0; i < 3; ++i) CHECK(limiter.take("a", t0).allowed);
    auto refused = limiter.take("a", t0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_seconds == 2);  // one token at 0.5/s
    // 1.4 s later 0.7 of a token is there: 0.6 s to go, said as a whole second.
    auto later = limiter.take("a", t0 + 1400ms);
    CHECK_FALSE(later.allowed);
    CHECK(later.retry_after_seconds == 1);
    CHECK(limiter.take("a", t0 + 2s).allowed);
    CHECK_FALSE(limiter.take("a", t0 + 2s).allowed);
    // Another client has a bucket of its own.
    CHECK(limiter.take("b", t0 + 2s).allowed);
}

TEST_CASE("rate limiter: Retry-After is the whole seconds until a token and at least 1", "[limits][unit]") {
    rate_limiter slow(0.1, 1);
    CHECK(slow.take("a", t0).allowed);
    CHECK(slow.take("a", t0 + 3s).retry_after_seconds == 7);
    rate_limiter fast(100, 1);
    CHECK(fast.take("a", t0).allowed);
    auto r = fast.take("a", t0);
    CHECK_FALSE(r.allowed);
    CHECK(r.retry_after_seconds == 1);
    CHECK(fast.take("a", t0 + 10ms).allowed);
}

TEST_CASE("rate limiter: the bucket never holds more than the burst", "[limits][unit]") {
    rate_limiter limiter(10, 2);
    CHECK(limiter.take("a", t0).allowed);
    // An hour idle refills to the burst, not to 36000 tokens.
    const auto later = t0 + 1h;
    CHECK(limiter.take("a", later).allowed);
    CHECK(limiter.take("a", later).allowed);
    CHECK_FALSE(limiter.take("a", later).allowed);
}

TEST_CASE("rate limiter: memory is bounded and the least recently seen client goes first", "[limits][unit]") {
    rate_limiter limiter(0.01, 1, 3);
    CHECK(limiter.take("a", t0).allowed);
    CHECK(limiter.take("b", t0 + 1ms).allowed);
    CHECK(limiter.take("c", t0 + 2ms).allowed);
    CHECK_FALSE(limiter.take("a", t0 + 3ms).allowed);  // a is now the most recently seen
    CHECK(limiter.take("d", t0 + 4ms).allowed);        // full: b, the least recently seen, goes
    CHECK(limiter.tracked() == 3);
    CHECK_FALSE(limiter.take("a", t0 + 5ms).allowed);  // a was kept, still empty
    CHECK(limiter.take("b", t0 + 6ms).allowed);        // b starts again (c goes)
    CHECK(limiter.tracked() == 3);
    for (int i = 0; i < 1000; ++i) limiter.take("x" + std::to_string(i), t0 + 7ms);
    CHECK(limiter.tracked() == 3);
}

TEST_CASE("rate limiter: buckets that refilled are forgotten", "[limits][unit]") {
    rate_limiter limiter(1, 2);
    for (int i = 0; i < 50; ++i) CHECK(limiter.take("c" + std::to_string(i), t0).allowed);
    CHECK(limiter.tracked() == 50);
    // A second later each has refilled to the burst: remembering them changes nothing.
    CHECK(limiter.take("new", t0 + 1s).allowed);
    CHECK(limiter.tracked() == 1);
}

TEST_CASE("connection counter: caps in all and per peer", "[limits][unit]") {
    connection_counter c(4, 2);
    CHECK(c.try_open("p"));
    CHECK(c.try_open("p"));
    CHECK_FALSE(c.try_open("p"));  // per peer
    CHECK(c.open_from("p") == 2);
    CHECK(c.try_open("q"));
    CHECK(c.try_open("r"));
    CHECK_FALSE(c.try_open("s"));  // in all
    CHECK(c.open() == 4);
    c.close("p");
    CHECK(c.open_from("p") == 1);
    CHECK(c.try_open("s"));
    CHECK_FALSE(c.try_open("p"));
    c.close("unknown");  // never opened: nothing changes
    CHECK(c.open() == 4);
}

TEST_CASE("forwarded client: the rightmost X-Forwarded-For address or nothing", "[limits][unit]") {
    using quickthumb::http::forwarded_client;
    CHECK(forwarded_client("203.0.113.7") == "203.0.113.7");
    CHECK(forwarded_client("198.51.100.1, 203.0.113.7") == "203.0.113.7");
    CHECK(forwarded_client(" 10.0.0.1 ,\t2001:db8::1 ") == "2001:db8::1");
    CHECK(forwarded_client("[2001:db8::2]") == "2001:db8::2");
    CHECK(forwarded_client("::ffff:192.0.2.1") == "192.0.2.1");
    CHECK(forwarded_client("203.0.113.7,") == std::nullopt);
    for (std::string bad : {"", "unknown", "1.2.3.4:80", "999.1.1.1", "1.2.3.4, evil", "  ", "_hidden"})
        CHECK(forwarded_client(bad) == std::nullopt);
    CHECK(quickthumb::http::normalized_address("::ffff:127.0.0.2") == "127.0.0.2");
}

TEST_CASE("connection cap: leaves room for files under the open-file limit", "[limits][unit]") {
    using quickthumb::http::connection_cap_for;
    CHECK(connection_cap_for(1024, 1 << 20) == 1024);
    CHECK(connection_cap_for(1024, 1024) == 768);
    CHECK(connection_cap_for(10, 100) == 10);
    CHECK(connection_cap_for(100, 100) == 36);
    CHECK(connection_cap_for(1000, 50) == 1);
}

TEST_CASE("config: the limits flags", "[limits][config]") {
    auto d = parse_serve({});
    CHECK(d.upload_rate == 10);
    CHECK(d.upload_burst == 60);
    CHECK(d.max_connections == 1024);
    CHECK(d.max_client_connections == 128);
    CHECK_FALSE(d.trust_proxy);
    auto c = parse_serve({"--upload-rate", "2.5", "--upload-burst", "7", "--max-connections", "50",
                          "--max-client-connections", "5", "--trust-proxy"});
    CHECK(c.upload_rate == 2.5);
    CHECK(c.upload_burst == 7);
    CHECK(c.max_connections == 50);
    CHECK(c.max_client_connections == 5);
    CHECK(c.trust_proxy);
    CHECK(parse_serve({"--upload-rate", "0"}).upload_rate == 0);
    CHECK_FALSE(parse_serve({"--trust-proxy=false"}).trust_proxy);
    for (std::string bad : {"-1", "abc", "1e3", "", "2.5x"})
        CHECK_THROWS_WITH(parse_serve({"--upload-rate", bad}), Catch::Contains("--upload-rate"));
    CHECK_THROWS_WITH(parse_serve({"--upload-burst", "0"}), Catch::Contains("--upload-burst"));
    CHECK_THROWS_WITH(parse_serve({"--max-connections", "0"}), Catch::Contains("--max-connections"));
    CHECK_THROWS_WITH(parse_serve({"--max-client-connections", "x"}), Catch::Contains("--max-client-connections"));
    auto env = [](const std::string& name) -> std::optional<std::string> {
        if (name == "QUICKTHUMB_UPLOAD_RATE") return "0.5";
        if (name == "QUICKTHUMB_TRUST_PROXY") return "true";
        return std::nullopt;
    };
    auto e = quickthumb::parse_command_line({"serve"}, env).serve;
    CHECK(e.upload_rate == 0.5);
    CHECK(e.trust_proxy);
    for (auto flag : {"--upload-rate", "--upload-burst", "--max-connections", "--max-client-connections", "--trust-proxy"})
        CHECK_THAT(quickthumb::usage(), Catch::Contains(flag));
}

// ---- the real binary ----

namespace {

const std::string& small_jpeg() {
    static const std::string jpeg = synthetic_jpeg(32, 24);
    return jpeg;
}

// One upload of a small JPEG from `source` ("": 127.0.0.1), with extra headers.
http_reply upload_from(const std::string& source, unsigned short port,
                       std::map<std::string, std::string> headers = {}) {
    auto [ct, body] = multipart_body({{"file", "a.jpg", "image/jpeg", small_jpeg()}});
    headers["Content-Type"] = ct;
    return http_request_from(source, port, "POST", "/api/v1/jobs", body, headers);
}

std::string error_code_of(const http_reply& r) {
    auto v = json::parse(r.body);
    return std::string(v.at("error").at("code").as_string());
}

// Reads one answer from a connection, then says whether the server closed it cleanly (end of
// stream, not a reset) after it.
struct answered {
    http_reply reply;
    bool closed_cleanly = false;
};
answered read_answer(beast::tcp_stream& stream) {
    stream.expires_after(30s);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    bhttp::read(stream, buf, parser);
    answered out;
    out.reply.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.reply.headers[name] = std::string(f.value());
    }
    out.reply.body = parser.get().body();
    char byte;
    beast::error_code ec;
    stream.socket().read_some(boost::asio::buffer(&byte, 1), ec);
    out.closed_cleanly = ec == boost::asio::error::eof;
    return out;
}

// Polls `attempt` (one request, one look) until it returns true or 10 s pass.
template <class F>
bool eventually(F attempt) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (attempt()) return true;
        std::this_thread::sleep_for(10ms);  // the poll's pace, not a wait for something
    }
    return false;
}

// The server's log reaches us through a pipe read on another thread: poll for a line.
bool logged(server_process& server, const std::string& text) {
    return eventually([&] { return server.output().find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("limits: a burst over the upload rate gets 429 with Retry-After and a clean close", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--upload-rate", "0.2", "--upload-burst", "3"});
    for (int i = 0; i < 3; ++i) REQUIRE(upload_from("", server.port()).status == 202);

    // The fourth, with a body the server never reads (2 MiB): the client still reads the answer.
    boost::asio::io_context io;
    beast::tcp_stream stream(connect_from(io, "", server.port()));
    auto [ct, body] = multipart_body({{"file", "a.jpg", "image/jpeg", small_jpeg() + std::string(2 << 20, 'x')}});
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/api/v1/jobs", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::content_type, ct);
    req.body() = body;
    req.prepare_payload();
    stream.expires_after(30s);
    bhttp::write(stream, req);
    auto got = read_answer(stream);
    CHECK(got.reply.status == 429);
    CHECK(error_code_of(got.reply) == "rate_limited");
    REQUIRE(got.reply.headers.count("retry-after"));
    const int retry_after = std::stoi(got.reply.headers["retry-after"]);
    CHECK(retry_after >= 1);
    CHECK(retry_after <= 5);  // one token at 0.2/s
    CHECK(got.reply.headers["connection"] == "close");
    CHECK(got.closed_cleanly);

    // Still limited; another address is not.
    CHECK(upload_from("", server.port()).status == 429);
    CHECK(upload_from("127.0.0.2", server.port()).status == 202);
    // Only uploads are limited.
    CHECK(http_request(server.port(), "GET", "/api/v1/jobs").status == 200);
    CHECK(logged(server, "status=429 ms="));
    CHECK(logged(server, "client=127.0.0.2"));
}

TEST_CASE("limits: uploads are accepted again once tokens refill", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--upload-rate", "5", "--upload-burst", "2"});
    // Faster than 5 a second, the burst runs out within a few uploads.
    int status = 0;
    for (int i = 0; i < 30 && status != 429; ++i) status = upload_from("", server.port()).status;
    REQUIRE(status == 429);
    // A token comes back within 0.2 s.
    CHECK(eventually([&] { return upload_from("", server.port()).status == 202; }));
}

TEST_CASE("limits: without --trust-proxy X-Forwarded-For does not escape the limit", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--upload-rate", "0.1", "--upload-burst", "2"});
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "203.0.113.1"}}).status == 202);
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "203.0.113.2"}}).status == 202);
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "203.0.113.3"}}).status == 429);
    CHECK(logged(server, "status=429 ms="));
    CHECK_THAT(server.output(), Catch::Contains("client=127.0.0.1") && !Catch::Contains("client=203.0.113."));
}

TEST_CASE("limits: with --trust-proxy each X-Forwarded-For client has its own bucket", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(),
                          {"--workers", "0", "--upload-rate", "0.1", "--upload-burst", "2", "--trust-proxy"});
    // The rightmost address is the client; what is left of it may be forged and changes nothing.
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "198.51.100.1, 203.0.113.1"}}).status == 202);
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "203.0.113.1"}}).status == 202);
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "10.9.9.9, 203.0.113.1"}}).status == 429);
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "203.0.113.2"}}).status == 202);
    // A malformed header: the peer is the client (its bucket is still full).
    CHECK(upload_from("", server.port(), {{"X-Forwarded-For", "not-an-address"}}).status == 202);
    CHECK(logged(server, "status=429 ms="));
    CHECK(logged(server, "client=203.0.113.1"));
    CHECK(logged(server, "client=203.0.113.2"));
}

TEST_CASE("limits: --max-client-connections refuses the sixth connection from one address", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--max-client-connections", "5"});
    boost::asio::io_context io;
    std::vector<beast::tcp_stream> held;
    for (int i = 0; i < 5; ++i) held.emplace_back(connect_from(io, "127.0.0.2", server.port()));

    // The sixth is answered without sending a request, and closed.
    beast::tcp_stream sixth(connect_from(io, "127.0.0.2", server.port()));
    auto got = read_answer(sixth);
    CHECK(got.reply.status == 503);
    CHECK(error_code_of(got.reply) == "too_many_connections");
    CHECK(got.reply.headers["retry-after"] == "1");
    CHECK(got.reply.headers["connection"] == "close");
    CHECK(got.closed_cleanly);

    // Another address is served; so is a held connection.
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/healthz", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    held[0].expires_after(30s);
    bhttp::write(held[0], req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(held[0], buf, res);
    CHECK(res.result_int() == 200);

    // A closed connection gives its place back.
    held.back().close();
    CHECK(eventually([&] { return http_request_from("127.0.0.2", server.port(), "GET", "/healthz").status == 200; }));
}

TEST_CASE("limits: --max-connections refuses connections over the process's cap", "[limits][http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--max-connections", "5"});
    boost::asio::io_context io;
    std::vector<beast::tcp_stream> held;
    for (int i = 0; i < 5; ++i) held.emplace_back(connect_from(io, "127.0.0.2", server.port()));

    // A request from another address: 503 (its request is never read, yet the answer arrives).
    auto refused = http_request(server.port(), "GET", "/healthz");
    CHECK(refused.status == 503);
    CHECK(error_code_of(refused) == "too_many_connections");
    CHECK(refused.headers["retry-after"] == "1");
    CHECK(logged(server, "msg=\"connection refused\""));

    held.clear();
    CHECK(eventually([&] { return http_request(server.port(), "GET", "/healthz").status == 200; }));
}
