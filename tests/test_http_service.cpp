// Black-box service behaviour: page, health, restart, SIGTERM, idempotency, headers, logs, HEAD.
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

using namespace qt_test;
using namespace std::chrono_literals;

TEST_CASE("http: the page and health", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    auto health = http_request(server.port(), "GET", "/healthz");
    CHECK(health.status == 200);
    auto page = http_request(server.port(), "GET", "/");
    REQUIRE(page.status == 200);
    CHECK_THAT(page.headers.at("content-type"), Catch::Contains("text/html"));
    CHECK_THAT(page.body, Catch::Contains("<script src=\"app.js\"") || Catch::Contains("<script src=\"/app.js\""));
    // The options of the API are on the page.
    CHECK_THAT(page.body, Catch::Contains("name=\"sizes\"") && Catch::Contains("value=\"fill\"") &&
                              Catch::Contains("value=\"webp\"") && Catch::Contains("name=\"enlarge\""));
    auto js = http_request(server.port(), "GET", "/app.js");
    CHECK(js.status == 200);
    CHECK_THAT(js.headers.at("content-type"), Catch::Contains("javascript"));
    CHECK_THAT(js.body, Catch::Contains("api/v1/jobs"));
}

TEST_CASE("http: jobs accepted before a SIGKILL all finish after a restart", "[http][e2e][recovery][pipeline]") {
    temp_dir dir;
    const auto img = synthetic_jpeg(400, 300);
    std::vector<std::string> ids;
    {
        // No workers: every job stays queued, as if the machine died right after the 202s.
        server_process server(dir.path(), {"--workers", "0"});
        for (int i = 0; i < 20; ++i) {
            auto r = upload(server.port(), {{"file", "p" + std::to_string(i) + ".jpg", "image/jpeg", img}});
            REQUIRE(r.status == 202);
            ids.push_back(str(parse_object(r.body).at("id")));
        }
        CHECK(server.stop(SIGKILL) == 128 + SIGKILL);
    }
    server_process server(dir.path(), {"--workers", "2"});
    for (const auto& id : ids) {
        auto done = parse_object(wait_for_final(server.port(), id, 60s));
        CHECK(str(done.at("state")) == "succeeded");
    }
    auto all = parse_object(http_request(server.port(), "GET", "/api/v1/jobs?state=succeeded&limit=100").body);
    CHECK(all.at("jobs").as_array().size() == ids.size());
}

TEST_CASE("http: SIGTERM stops the service cleanly", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
    CHECK(server.stop(SIGTERM) == 0);
    CHECK_THAT(server.output(), Catch::Contains("shutting down"));
}

TEST_CASE("http: an Idempotency-Key makes a repeated upload return the first job", "[http][idempotency]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0"});
    const auto p = server.port();
    const auto img = synthetic_jpeg(64, 48);
    auto [ct, body] = multipart_body({{"file", "a.jpg", "image/jpeg", img}});
    auto send = [&](const std::string& key) {
        return http_request(p, "POST", "/api/v1/jobs", body, {{"Content-Type", ct}, {"Idempotency-Key", key}});
    };
    auto first = send("order-42-avatar");
    REQUIRE(first.status == 202);
    CHECK(first.headers.count("idempotent-replayed") == 0);
    const auto id = str(parse_object(first.body).at("id"));
    auto again = send("order-42-avatar");
    REQUIRE(again.status == 202);
    CHECK(again.headers.at("idempotent-replayed") == "true");
    CHECK(str(parse_object(again.body).at("id")) == id);
    CHECK(again.headers.at("location") == "/api/v1/jobs/" + id);
    auto other = send("order-43-avatar");
    REQUIRE(other.status == 202);
    CHECK(str(parse_object(other.body).at("id")) != id);
    // Exactly two jobs exist, and the replay stored no second upload.
    auto list = parse_object(http_request(p, "GET", "/api/v1/jobs?limit=10").body);
    CHECK(list.at("jobs").as_array().size() == 2);
    std::size_t uploads = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path() / "uploads")) ++uploads;
    CHECK(uploads == 2);
    // Keys are bounded and visible ASCII.
    CHECK(send("has space").status == 400);
    CHECK(send(std::string(300, 'k')).status == 400);
}

TEST_CASE("http: every answer carries a strict CSP and nosniff", "[http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "1"});
    const auto p = server.port();
    auto r = upload(p, {{"file", "a.jpg", "image/jpeg", synthetic_jpeg(64, 48)}});
    REQUIRE(r.status == 202);
    const auto id = str(parse_object(r.body).at("id"));
    const auto done = parse_object(wait_for_final(p, id, 60s));
    const auto thumb = str(done.at("outputs").as_array().at(0).at("url"));
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/"}, {"GET", "/app.js"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/api/v1/jobs"},
             {"GET", "/api/v1/jobs/" + id}, {"GET", thumb}, {"GET", "/nope"}, {"PUT", "/healthz"},
             {"DELETE", "/api/v1/jobs/" + id}}) {
        auto res = http_request(p, method, target);
        INFO(method << " " << target << " -> " << res.status);
        CHECK_THAT(res.headers["content-security-policy"], Catch::Contains("default-src 'self'"));
        CHECK(res.headers["x-content-type-options"] == "nosniff");
    }
    CHECK(r.headers["x-content-type-options"] == "nosniff");  // the 202 too
}

TEST_CASE("http: one log line per request unless --log-level says otherwise", "[http][logs]") {
    {
        temp_dir dir;
        server_process server(dir.path());
        CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
        CHECK(http_request(server.port(), "GET", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA").status == 404);
        CHECK(server.stop(SIGTERM) == 0);
        const auto out = server.output();
        CHECK_THAT(out, Catch::Contains("msg=\"request\" method=GET path=\"/healthz\" status=200 ms="));
        CHECK_THAT(out, Catch::Contains("path=\"/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA\" status=404"));
    }
    temp_dir dir;
    server_process quiet(dir.path(), {"--log-level", "warn"});
    CHECK(http_request(quiet.port(), "GET", "/healthz").status == 200);
    CHECK(quiet.stop(SIGTERM) == 0);
    CHECK_THAT(quiet.output(), !Catch::Contains("msg=\"request\""));
    CHECK_THAT(quiet.output(), !Catch::Contains("level=info"));
}

TEST_CASE("http: HEAD answers carry no body so keep-alive stays in step", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    // Two requests on one connection: the HEAD answer must end at its header, or the GET's
    // status line would not come right after it.
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket sock(io);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    const std::string reqs =
        "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    boost::asio::write(sock, boost::asio::buffer(reqs));
    std::string got;
    boost::system::error_code ec;
    for (;;) {
        char buf[4096];
        const auto n = sock.read_some(boost::asio::buffer(buf), ec);
        got.append(buf, n);
        if (ec) break;
    }
    const auto first_end = got.find("\r\n\r\n");
    REQUIRE(first_end != std::string::npos);
    CHECK_THAT(got.substr(0, first_end), Catch::Contains("Content-Length: 16"));
    CHECK(got.compare(first_end + 4, 15, "HTTP/1.1 200 OK") == 0);
    REQUIRE(got.size() > first_end + 20);
    CHECK(got.substr(got.size() - 16) == "{\"status\":\"ok\"}\n");
}
