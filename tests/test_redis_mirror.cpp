// The Redis mirror from outside: the real binary with --redis and a real redis-server.
#include "quickthumb/image.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace qt_test;
using namespace std::chrono_literals;
namespace json = boost::json;

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
