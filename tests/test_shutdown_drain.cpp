// A SIGTERM drains connections before the process stops: an upload in its body finishes and gets
// its answer, an idle keep-alive connection is closed, an event stream is told to reconnect.
#include "support/json.hpp"
#include "support/raw_connection.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <thread>

using namespace qt_test;
using namespace std::chrono_literals;

namespace {

// Polls the process's output for `text` (the only way to see where it is); false after `limit`.
bool said(server_process& server, const std::string& text, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (server.output().find(text) == std::string::npos) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

}  // namespace

TEST_CASE("shutdown: an upload in flight at SIGTERM gets its answer, idle and event connections close",
          "[durability][shutdown][events]") {
    temp_dir dir;
    const std::string image = synthetic_jpeg(640, 480);
    std::string id;
    {
        // No workers: nothing but the connections holds the shutdown up.
        server_process server(dir.path(), {"--workers", "0", "--shutdown-grace", "30"});
        const auto port = server.port();

        // A keep-alive connection that has had its answer and waits for its next request.
        raw_connection idle(port);
        REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto first = idle.read_reply(10s);
        REQUIRE(first);
        REQUIRE(first->status == 200);

        // An event stream, open and read up to its first lines.
        raw_connection events(port);
        REQUIRE(events.send("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"));
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (events.pending().find("retry: ") == std::string::npos && std::chrono::steady_clock::now() < until)
            events.wait_closed(50ms);
        REQUIRE(events.pending().find("retry: ") != std::string::npos);

        // An upload whose header the service has taken (it said 100 Continue), with half its body.
        raw_connection upload(port);
        REQUIRE(upload.send("POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nExpect: 100-continue\r\n"
                            "Content-Length: " + std::to_string(image.size()) + "\r\n\r\n"));
        auto go_on = upload.read_reply(10s);
        REQUIRE(go_on);
        REQUIRE(go_on->status == 100);
        const auto half = image.size() / 2;
        REQUIRE(upload.send(std::string_view(image).substr(0, half)));

        server.signal(SIGTERM);
        REQUIRE(said(server, "shutting down", 10s));
        // The idle connection goes at once; the event stream after its last event.
        CHECK(idle.wait_closed(10s));
        CHECK(events.wait_closed(10s));
        INFO(events.pending());
        CHECK(events.pending().find("event: reconnect") != std::string::npos);
        // The process is still there for the upload: the rest of its body arrives, and its answer.
        CHECK_FALSE(server.wait_exit(0ms));
        REQUIRE(upload.send(std::string_view(image).substr(half)));
        auto answer = upload.read_reply(30s);
        REQUIRE(answer);
        INFO(answer->body);
        CHECK(answer->status == 202);
        CHECK(answer->headers["connection"] == "close");
        id = str(parse_object(answer->body).at("id"));
        CHECK(upload.wait_closed(10s));
        // With no connection left, the process stops by itself, cleanly.
        auto status = server.wait_exit(30s);
        REQUIRE(status);
        CHECK(*status == 0);
    }
    // The job the answer named was kept.
    server_process again(dir.path(), {"--workers", "0"});
    auto job = http_request(again.port(), "GET", "/api/v1/jobs/" + id);
    REQUIRE(job.status == 200);
    CHECK(str(parse_object(job.body).at("state")) == "queued");
}
