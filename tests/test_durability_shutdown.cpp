// Black-box durability at the edges of the service's life: a full backlog gets 429 with
// Retry-After while reads still work, and a SIGTERM with work in flight exits cleanly, refuses
// late uploads, and a restart finishes every job; a second process on one data directory is refused.
#include "support/durability.hpp"
#include "support/json.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace qt_test;
namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// A keep-alive connection, for requests sent on a connection opened earlier.
class connection {
public:
    explicit connection(unsigned short port) : stream_(io_) {
        stream_.expires_after(30s);
        stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    }
    // Throws when the connection fails or the peer closes it.
    http_reply request(const std::string& method, const std::string& target, const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {}) {
        namespace bhttp = boost::beast::http;
        bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.keep_alive(true);
        for (const auto& [k, v] : headers) req.set(k, v);
        req.body() = body;
        req.prepare_payload();
        stream_.expires_after(30s);
        bhttp::write(stream_, req);
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(64 << 20);
        bhttp::read(stream_, buffer_, parser);
        http_reply out;
        out.status = static_cast<int>(parser.get().result_int());
        for (const auto& f : parser.get()) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            out.headers[name] = std::string(f.value());
        }
        out.body = parser.get().body();
        return out;
    }

private:
    boost::asio::io_context io_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
};

}  // namespace

TEST_CASE("durability: a full backlog gets 429 with Retry-After and reads still work", "[durability][backlog]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--max-backlog", "5"});
    const auto img = jpeg_of(noisy(320, 240, 3, 16), 85);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        auto r = upload(server.port(), {{"file", numbered("b", i, ".jpg"), "image/jpeg", img}});
        INFO("upload " << i << ": " << r.status << " " << r.body);
        REQUIRE(r.status == 202);
        ids.push_back(str(parse_object(r.body).at("id")));
    }
    auto sixth = upload(server.port(), {{"file", "b5.jpg", "image/jpeg", img}});
    INFO("sixth upload: " << sixth.status << " " << sixth.body);
    REQUIRE(sixth.status == 429);
    REQUIRE(sixth.headers.count("retry-after") == 1);
    const std::string retry_after = sixth.headers.at("retry-after");
    CHECK(!retry_after.empty());
    CHECK(std::all_of(retry_after.begin(), retry_after.end(), [](unsigned char c) { return std::isdigit(c); }));
    CHECK(std::atoi(retry_after.c_str()) > 0);
    CHECK(error_code_of(sixth.body) == "backlog_full");
    CHECK(!error_message_of(sixth.body).empty());
    // A refused upload stores nothing.
    CHECK(entries(dir.path() / "tmp").empty());
    CHECK(entries(dir.path() / "uploads").size() == 5);
    CHECK(list_jobs(server.port(), "queued").size() == 5);
    // Reads still work.
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
    for (const auto& id : ids) CHECK(http_request(server.port(), "GET", "/api/v1/jobs/" + id).status == 200);
    CHECK(list_jobs(server.port()).size() == 5);
    // Nothing runs, so a SIGTERM has nothing to wait for: the grace period (20 s by default) is a
    // bound for running jobs, not a delay every stop pays.
    const auto signalled = steady::now();
    server.signal(SIGTERM);
    auto status = server.wait_exit(30s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - signalled);
    INFO("it printed:\n" << tail(server.output()));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    INFO("SIGTERM with --workers 0 took " << took.count() << " ms");
    CHECK(took < 5s);
}

TEST_CASE("durability: SIGTERM with work in flight exits cleanly and a restart finishes every job",
          "[durability][shutdown]") {
    temp_dir dir;
    launch_options opts;
    opts.drain_output = true;
    const int grace_s = 20;
    auto server = std::make_unique<server_process>(
        dir.path(), std::vector<std::string>{"--workers", "1", "--shutdown-grace", std::to_string(grace_s)}, opts);
    // Heavy enough that one worker is still busy with them when the signal comes: a full decode and
    // two large outputs each.
    std::vector<std::string> images;
    for (std::uint32_t i = 0; i < 4; ++i) images.push_back(jpeg_of(noisy(1600, 1200, 20 + i, 24), 90));
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) {
        auto r = upload(server->port(), {{"file", numbered("s", i, ".jpg"), "image/jpeg", images[i % 4]}}, {},
                        "?sizes=1200,800&quality=90");
        REQUIRE(r.status == 202);
        ids.push_back(str(parse_object(r.body).at("id")));
    }
    // Work is in flight: a job is processing and others wait.
    bool processing = false;
    {
        const auto deadline = steady::now() + 30s;
        while (!(processing = any_in_state(server->port(), "processing")) && steady::now() < deadline)
            std::this_thread::sleep_for(5ms);  // polling a process: the deadline bounds a failure only
    }
    REQUIRE(processing);
    const auto queued_at_signal = list_jobs(server->port(), "queued").size();
    // A keep-alive connection opened before the signal, to send an upload on during the shutdown.
    connection early(server->port());
    REQUIRE(early.request("GET", "/healthz").status == 200);

    const auto signalled = steady::now();
    server->signal(SIGTERM);
    // Once the service says it is shutting down (an upload already being received then may still
    // be accepted, durably), uploads get 503 or a refused/closed connection, never a 202.
    {
        const auto deadline = steady::now() + 10s;
        while (server->output().find("shutting down") == std::string::npos && server->running() &&
               steady::now() < deadline)
            std::this_thread::sleep_for(2ms);  // polling a process: the deadline bounds a failure only
    }
    std::vector<std::string> during;
    const auto [ct, body] = multipart_body({{"file", "late.jpg", "image/jpeg", images[0]}});
    try {
        auto r = early.request("POST", "/api/v1/jobs", body, {{"Content-Type", ct}});
        during.push_back(std::to_string(r.status) + " " + error_code_of(r.body));
    } catch (const std::exception& e) {
        during.push_back("closed");
    }
    int attempts_during = 0;
    while (server->running() && attempts_during < 200) {
        ++attempts_during;
        try {
            auto r = upload(server->port(), {{"file", "late.jpg", "image/jpeg", images[0]}});
            during.push_back(std::to_string(r.status) + " " + error_code_of(r.body));
        } catch (const std::exception&) {
            during.push_back("refused");
        }
    }
    auto status = server->wait_exit(std::chrono::seconds(grace_s + 30));
    const auto took = steady::now() - signalled;
    INFO("it printed:\n" << tail(server->output()));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(took < std::chrono::seconds(grace_s + 2));
    CHECK_THAT(server->output(), Catch::Contains("shutting down"));
    for (const auto& d : during) {
        INFO("an upload during the shutdown got: " << d);
        CHECK((d == "closed" || d == "refused" || d.rfind("503 ", 0) == 0));
    }
    server.reset();

    // A restart finishes everything: nothing lost, nothing queued forever.
    server_process again(dir.path(), {"--workers", "2"}, opts);
    auto states = wait_all_final(again.port(), ids, sanitized ? 180s : 60s);
    INFO("the restart printed:\n" << tail(again.output()));
    INFO("missing: " << first_lines(states.missing) << "unfinished: " << first_lines(states.unfinished));
    CHECK(states.missing.empty());
    CHECK(states.unfinished.empty());
    output_check files;
    int succeeded = 0;
    for (const auto& [id, j] : states.jobs) {
        INFO(json::serialize(j));
        CHECK(str(j.at("state")) == "succeeded");
        if (str(j.at("state")) == "succeeded") {
            ++succeeded;
            check_outputs(dir.path(), j, files, {{1200, 900}, {800, 600}});
        }
    }
    INFO("output problems:\n" << first_lines(files.problems));
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    CHECK_FALSE(any_in_state(again.port(), "queued"));
    CHECK_FALSE(any_in_state(again.port(), "processing"));
    CHECK(list_jobs(again.port()).size() == ids.size());
    const auto tally = [&](auto pred) { return std::count_if(during.begin(), during.end(), pred); };
    std::printf("sigterm: jobs=%zu queued_at_signal=%zu uploads_during_shutdown=%zu (503=%zd refused=%zd closed=%zd) "
                "exit=%d shutdown_ms=%lld succeeded_after_restart=%d\n",
                ids.size(), queued_at_signal, during.size(),
                tally([](const std::string& d) { return d.rfind("503 ", 0) == 0; }),
                tally([](const std::string& d) { return d == "refused"; }),
                tally([](const std::string& d) { return d == "closed"; }), *status,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()), succeeded);
    std::fflush(stdout);
}

TEST_CASE("durability: a second process on one data directory is refused and the first goes on", "[durability][lock]") {
    temp_dir dir;
    server_process first(dir.path() / "data", {"--workers", "0"});
    const auto second = run_process({QT_BINARY_PATH, "serve", "--port", "0", "--data", (dir.path() / "data").string()});
    CHECK(second.status == 2);
    CHECK_THAT(second.err, Catch::Contains("in use by another quickthumb process") &&
                               Catch::Contains("pid " + std::to_string(first.pid())));
    // The first one's jobs are untouched by the attempt, and it still takes uploads.
    CHECK(http_request(first.port(), "POST", "/api/v1/jobs", jpeg_of(noisy(64, 48, 1, 20), 85),
                       {{"Content-Type", "image/jpeg"}})
              .status == 202);
    // Its lock goes with it, SIGKILL included: the next start on the directory works.
    first.stop(SIGKILL);
    server_process next(dir.path() / "data", {"--workers", "0"});
    CHECK(list_jobs(next.port()).size() == 1);
}
