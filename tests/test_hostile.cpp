// Hostile HTTP against the real binary over raw sockets: slow clients, oversized and malformed
// headers, lying bodies, wrong types, broken multipart, garbage. Each case gets its 4xx or a
// closed connection, and the server keeps serving.
#include "quickthumb/config.hpp"
#include "support/raw_connection.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace qt_test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// Every case ends here: a fresh client is served and the process is alive.
void check_still_serves(server_process& server) {
    CHECK(server.running());
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
}

// A valid request with junk behind it on one connection: the request is answered (200), the junk
// refused (400), then the server closes.
void check_answered_then_refused(raw_connection& c) {
    auto first = c.read_reply(10s);
    REQUIRE(first);
    CHECK(first->status == 200);
    auto second = c.read_reply(10s);
    REQUIRE(second);
    CHECK(second->status == 400);
    CHECK(c.wait_closed(10s));
}

std::string error_code_of(const http_reply& r) {
    auto v = json::parse(r.body);
    return std::string(v.at("error").at("code").as_string());
}

std::size_t job_count(unsigned short port) {
    auto r = http_request(port, "GET", "/api/v1/jobs");
    REQUIRE(r.status == 200);
    return json::parse(r.body).at("jobs").as_array().size();
}

// Sends `request` on a fresh connection; the first answer, which must be followed by a close.
http_reply refused_and_closed(unsigned short port, const std::string& request) {
    raw_connection c(port);
    c.send(request);  // the server may close before it has all: what matters is the answer
    auto reply = c.read_reply(10s);
    REQUIRE(reply);
    CHECK(c.wait_closed(10s));
    return *reply;
}

std::string chunked(const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

}  // namespace

TEST_CASE("hostile: --header-timeout and --body-timeout flags", "[hostile][config]") {
    auto no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    auto d = quickthumb::parse_command_line({"serve"}, no_env).serve;
    CHECK(d.header_timeout == 10s);
    CHECK(d.body_timeout == 30s);
    auto c = quickthumb::parse_command_line({"serve", "--header-timeout", "1s", "--body-timeout=500ms"}, no_env).serve;
    CHECK(c.header_timeout == 1s);
    CHECK(c.body_timeout == 500ms);
    auto env = [](const std::string& n) -> std::optional<std::string> {
        if (n == "QUICKTHUMB_HEADER_TIMEOUT") return "2m";
        return std::nullopt;
    };
    CHECK(quickthumb::parse_command_line({"serve"}, env).serve.header_timeout == 2min);
    CHECK_THROWS_WITH(quickthumb::parse_command_line({"serve", "--body-timeout", "0"}, no_env),
                      Catch::Contains("--body-timeout: must be at least 1ms"));
    CHECK_THROWS_WITH(quickthumb::parse_command_line({"serve", "--header-timeout", "soon"}, no_env),
                      Catch::Contains("--header-timeout"));
    CHECK_THAT(quickthumb::usage(), Catch::Contains("--header-timeout") && Catch::Contains("--body-timeout"));
}

TEST_CASE("hostile: 500 slowloris connections do not stop others from being served", "[hostile][slow]") {
    temp_dir dir;
    // The default header deadline (10s) holds them meanwhile. The per-address cap (128 by default,
    // tests/test_limits.cpp) would refuse most of them at once: raised, so the deadline alone is tested.
    server_process server(dir.path(), {"--max-client-connections", "1000"});
    std::vector<raw_connection> loris;
    for (int i = 0; i < 500; ++i) {
        loris.emplace_back(server.port(), "127.0.0.2");
        REQUIRE(loris.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    }
    const auto began = std::chrono::steady_clock::now();
    auto up = upload(server.port(), {{"file", "a.jpg", "image/jpeg", synthetic_jpeg(64, 48)}});
    REQUIRE(up.status == 202);
    const auto id = std::string(json::parse(up.body).at("id").as_string());
    CHECK(http_request(server.port(), "GET", "/api/v1/jobs/" + id).status == 200);
    CHECK(std::chrono::steady_clock::now() - began < 5s);
    // They were really held all along (none closed yet), so the above was served beside them.
    std::size_t still_open = 0;
    for (auto& c : loris) still_open += c.closed_now() ? 0 : 1;
    CHECK(still_open == 500);
    check_still_serves(server);
}

TEST_CASE("hostile: the header deadline closes slow clients", "[hostile][slow]") {
    temp_dir dir;
    server_process server(dir.path(), {"--header-timeout", "1s", "--max-client-connections", "1000"});
    SECTION("500 partial headers are all closed") {
        std::vector<raw_connection> loris;
        for (int i = 0; i < 500; ++i) {
            loris.emplace_back(server.port(), "127.0.0.2");
            REQUIRE(loris.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
        }
        // Well before the default deadline (10s) would close them.
        CHECK(wait_all_closed(loris, 6s) == 500);
    }
    SECTION("a header dripped a byte at a time is bounded by the deadline, not per read") {
        raw_connection drip(server.port());
        const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: " + std::string(2000, 'a') + "\r\n\r\n";
        const auto began = std::chrono::steady_clock::now();
        std::size_t sent = 0;
        // One byte every 50ms: each read comes quickly, the whole header never does.
        while (sent < header.size() && drip.send(header.substr(sent, 1)) && !drip.wait_closed(50ms)) ++sent;
        CHECK(drip.wait_closed(1s));
        CHECK(std::chrono::steady_clock::now() - began < 6s);
        CHECK(sent < header.size());
        CHECK(drip.pending().find("200 OK") == std::string::npos);
    }
    check_still_serves(server);
}

TEST_CASE("hostile: oversized headers / too many fields / overlong URLs", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    SECTION("a header over 16 KB: 431") {
        auto r = refused_and_closed(server.port(),
                                    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n");
        CHECK(r.status == 431);
        CHECK(error_code_of(r) == "header_too_large");
    }
    SECTION("more than 100 fields: 431; exactly 100 are served") {
        std::string fields;
        for (int i = 0; i < 99; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
        raw_connection ok(server.port());
        ok.send("GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n");
        auto served = ok.read_reply(10s);
        REQUIRE(served);
        CHECK(served->status == 200);
        auto r = refused_and_closed(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + "X-One: more\r\n\r\n");
        CHECK(r.status == 431);
        CHECK(error_code_of(r) == "header_too_large");
        CHECK_THAT(r.body, Catch::Contains("100 header fields"));
    }
    SECTION("a URL over 8 KB: 414") {
        auto r = refused_and_closed(server.port(), "GET /healthz?q=" + std::string(9000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(r.status == 414);
        CHECK(error_code_of(r) == "uri_too_long");
        // Longer than the whole header limit: still the URL's fault.
        auto r2 = refused_and_closed(server.port(), "GET /" + std::string(20000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(r2.status == 414);
        CHECK(error_code_of(r2) == "uri_too_long");
        // Just under the limit is routed as usual.
        CHECK(http_request(server.port(), "GET", "/healthz?q=" + std::string(8000, 'u')).status == 200);
    }
    check_still_serves(server);
}

TEST_CASE("hostile: a body longer than declared is read as the next request", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    raw_connection c(server.port());
    std::string extra = "\x16\x03\x01 not a request at all";
    extra += std::string(190 - extra.size() - 4, '#') + "\r\n\r\n";
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789" + extra));
    check_answered_then_refused(c);
    check_still_serves(server);
}

TEST_CASE("hostile: a body shorter than declared that stalls is closed after --body-timeout", "[hostile][slow]") {
    temp_dir dir;
    server_process server(dir.path(), {"--body-timeout", "1s"});
    const auto jpeg = synthetic_jpeg(64, 48);
    SECTION("an upload") {
        raw_connection c(server.port());
        REQUIRE(c.send("POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                       std::to_string(jpeg.size()) + "\r\n\r\n" + jpeg.substr(0, 100)));
        CHECK(c.wait_closed(6s));  // the default (30s) would not be
    }
    SECTION("any other request") {
        raw_connection c(server.port());
        REQUIRE(c.send("POST /api/v1/jobs/x/retry HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
        CHECK(c.wait_closed(6s));
    }
    CHECK(job_count(server.port()) == 0);
    check_still_serves(server);
}

TEST_CASE("hostile: chunked bodies too long or malformed", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path(), {"--max-upload", "100K"});
    const auto jpeg = synthetic_jpeg(64, 48);
    SECTION("a chunked upload past --max-upload: 413") {
        raw_connection c(server.port());
        REQUIRE(c.send("POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       chunked(jpeg)));
        // It goes on and on; the server answers once it has seen too much.
        std::optional<http_reply> reply;
        for (int i = 0; i < 64 && !reply; ++i) {
            if (!c.send(chunked(std::string(16384, '\0')))) break;
            reply = c.read_reply(0ms);
        }
        if (!reply) reply = c.read_reply(10s);
        REQUIRE(reply);
        CHECK(reply->status == 413);
        CHECK(c.wait_closed(10s));
    }
    SECTION("a chunked body over 64 KB elsewhere: 413") {
        std::string body;
        for (int i = 0; i < 5; ++i) body += chunked(std::string(16384, 'x'));
        auto r = refused_and_closed(server.port(), "POST /api/v1/jobs/x/retry HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                                       body + "0\r\n\r\n");
        CHECK(r.status == 413);
    }
    SECTION("malformed chunk sizes: 400") {
        auto r = refused_and_closed(server.port(),
                                    "POST /api/v1/jobs/x/retry HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
        CHECK(r.status == 400);
        CHECK(error_code_of(r) == "bad_request");
        auto u = refused_and_closed(server.port(),
                                    "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                        chunked(jpeg.substr(0, 2000)) + "-5\r\nxx\r\n0\r\n\r\n");
        CHECK(u.status == 400);
    }
    CHECK(job_count(server.port()) == 0);
    check_still_serves(server);
}

TEST_CASE("hostile: wrong Content-Type on an upload is 415", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto jpeg = synthetic_jpeg(64, 48);
    for (std::string type : {"text/plain", "application/json", "multipart/form-data"}) {
        auto r = http_request(server.port(), "POST", "/api/v1/jobs", jpeg, {{"Content-Type", type}});
        INFO(type);
        CHECK(r.status == 415);
        CHECK(error_code_of(r) == "unsupported_media_type");
    }
    CHECK(job_count(server.port()) == 0);
    check_still_serves(server);
}

TEST_CASE("hostile: broken multipart is 400 with a reason and creates no job", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto jpeg = synthetic_jpeg(64, 48);
    const std::string b = "qtB0undary";
    const std::string file_part = "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                                  "Content-Type: image/jpeg\r\n\r\n" + jpeg + "\r\n";
    auto post = [&](const std::string& boundary, const std::string& body) {
        return http_request(server.port(), "POST", "/api/v1/jobs", body,
                            {{"Content-Type", "multipart/form-data; boundary=" + boundary}});
    };
    struct bad_case {
        std::string what, boundary, body, reason;
    };
    const std::vector<bad_case> cases = {
        {"no closing boundary", b, file_part, "closing boundary"},
        {"a boundary that never appears", b, "--other\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + jpeg +
                                                 "\r\n--other--\r\n", "never appears"},
        {"a boundary over 70 characters", std::string(71, 'q'),
         "--" + std::string(71, 'q') + "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + jpeg + "\r\n--" +
             std::string(71, 'q') + "--\r\n", "70 characters"},
        {"a part without Content-Disposition", b,
         "--" + b + "\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + "\r\n--" + b + "--\r\n", "Content-Disposition"},
        {"garbage where part headers belong", b,
         file_part + "--" + b + "\r\n\x01\xfe garbage \xff\r\n\r\nmore\r\n--" + b + "--\r\n", "Name: value"},
        {"a nested multipart part", b,
         "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
         "--in\r\n\x02\x01--in--\r\n--" + b + "--\r\n", "nested multipart"},
        {"bytes glued to a boundary", b, "--" + b + "garbage\r\n\r\n--" + b + "--\r\n", "after a boundary"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto r = post(c.boundary, c.body);
        CHECK(r.status == 400);
        CHECK(error_code_of(r) == "bad_request");
        CHECK_THAT(r.body, Catch::Contains(c.reason));
    }
    CHECK(job_count(server.port()) == 0);
    // The same server takes a well-formed upload.
    CHECK(post(b, file_part + "--" + b + "--\r\n").status == 202);
    CHECK(job_count(server.port()) == 1);
    check_still_serves(server);
}

TEST_CASE("hostile: pipelined garbage after a valid request", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    raw_connection c(server.port());
    REQUIRE(c.send(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") + "\x16\x03 junk junk\r\n\r\n" +
                   std::string(3000, '\xff')));
    check_answered_then_refused(c);
    check_still_serves(server);
}

TEST_CASE("hostile: unknown methods / HTTP/0.9 / HTTP/2 prefaces", "[hostile]") {
    temp_dir dir;
    server_process server(dir.path());
    SECTION("an unknown method: 400") {
        auto r = refused_and_closed(server.port(), "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(r.status == 400);
        CHECK_THAT(r.body, Catch::Contains("unknown method"));
    }
    SECTION("an HTTP/2 preface: 400") {
        auto r = refused_and_closed(server.port(), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        CHECK(r.status == 400);
    }
    SECTION("HTTP/0.9 (no version): 400") {
        auto r = refused_and_closed(server.port(), "GET /healthz\r\n\r\n");
        CHECK(r.status == 400);
    }
    SECTION("HTTP/3.0 on a text request line: 400") {
        auto r = refused_and_closed(server.port(), "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n");
        CHECK(r.status == 400);
    }
    check_still_serves(server);
}
