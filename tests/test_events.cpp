// Live job events: the bus alone (no sockets), then GET /api/v1/events on the real binary.
#include "quickthumb/event_bus.hpp"
#include "support/server_process.hpp"
#include "support/sse_client.hpp"
#include "support/synthetic.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

using namespace quickthumb;
using namespace std::chrono_literals;
namespace json = boost::json;
using qt_test::sse_client;
using qt_test::sse_event;
using qt_test::events_in;
using qt_test::states_of;

TEST_CASE("events: the bus keeps a bounded ring with consecutive ids", "[events]") {
    event_bus bus(3, 100);
    CHECK(bus.last_id() == 99);
    CHECK(bus.publish("a", "1") == 100);
    CHECK(bus.publish("b", "2") == 101);
    CHECK(bus.publish("a", "3") == 102);
    auto all = bus.since(99, 10);
    REQUIRE(all.events.size() == 3);
    CHECK_FALSE(all.missed);
    CHECK(all.events[0].data == "1");
    CHECK(all.scanned_to == 102);
    // Filtered: only a's, but the scan still moves past b's.
    auto a = bus.since(100, 10, "a");
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].id == 102);
    CHECK(a.scanned_to == 102);
    CHECK(bus.since(102, 10).events.empty());
    // At most `max`.
    CHECK(bus.since(99, 2).events.size() == 2);
    CHECK(bus.since(99, 2).scanned_to == 101);
    // The ring drops the oldest: a reader that was further behind is told it missed some.
    bus.publish("c", "4");
    CHECK(bus.since(99, 10).missed);
    CHECK_FALSE(bus.since(100, 10).missed);
    CHECK(bus.since(100, 10).events.size() == 3);
    // Ids from another run (before this run's first, or never given) are "missed" too.
    CHECK(bus.since(5, 10).missed);
    CHECK(bus.since(5000, 10).missed);
    // 0 is "everything the ring has", not a miss.
    CHECK_FALSE(bus.since(0, 10).missed);
}

TEST_CASE("events: ids given by a shared stream: gaps, an id not read yet, and drops", "[events]") {
    event_bus bus(3, 1000, true);
    bus.publish_at(1000, "a", "1");
    bus.publish_at(1005, "b", "2");
    bus.publish_at(1003, "c", "late");  // not after the last: dropped
    bus.publish_at(1010, "a", "3");
    CHECK(bus.last_id() == 1010);
    auto all = bus.since(999, 10);
    REQUIRE(all.events.size() == 3);
    CHECK_FALSE(all.missed);
    CHECK(all.events[1].id == 1005);
    // Resuming between two ids gives what came after.
    auto mid = bus.since(1004, 10);
    REQUIRE(mid.events.size() == 2);
    CHECK(mid.events[0].id == 1005);
    // An id newer than any here is another instance's that this one has not read yet: nothing
    // yet, and not a miss (the reader waits for what comes after it).
    auto ahead = bus.since(1020, 10);
    CHECK(ahead.events.empty());
    CHECK_FALSE(ahead.missed);
    CHECK(ahead.scanned_to == 1020);
    bus.publish_at(1030, "d", "4");
    CHECK(bus.since(1020, 10).events.size() == 1);
    // The ring dropped 1000: a reader at or after it missed nothing; one before it did.
    CHECK_FALSE(bus.since(1000, 10).missed);
    CHECK(bus.since(999, 10).missed);
}

TEST_CASE("events: a publish wakes a waiting reader", "[events]") {
    event_bus bus;
    boost::asio::io_context io;
    auto w = bus.subscribe(io.get_executor());
    bool woke = false;
    w->timer.expires_after(1h);
    w->timer.async_wait([&](boost::system::error_code ec) { woke = ec == boost::asio::error::operation_aborted; });
    std::thread publisher([&] { bus.publish("a", "{}"); });
    publisher.join();
    io.run_for(10s);  // returns as soon as the wait completed
    CHECK(woke);
    // Still subscribed after being woken once.
    woke = false;
    w->timer.expires_after(1h);
    w->timer.async_wait([&](boost::system::error_code ec) { woke = ec == boost::asio::error::operation_aborted; });
    bus.publish("a", "{}");
    io.restart();
    io.run_for(10s);
    CHECK(woke);
    // A reader that went away is forgotten; publishing does not touch it.
    w.reset();
    bus.publish("a", "{}");
}

namespace {


std::string upload_id(unsigned short port, const std::string& bytes) {
    auto r = qt_test::upload(port, {{"file", "p.jpg", "image/jpeg", bytes}});
    REQUIRE(r.status == 202);
    return std::string(json::parse(r.body).at("id").as_string());
}

bool has_final(const std::string& text, const std::string& job) {
    for (const auto& s : states_of(events_in(text), job))
        if (s == "succeeded" || s == "failed") return true;
    return false;
}

}  // namespace

TEST_CASE("events: a job's changes stream in order and a reconnect resumes after Last-Event-ID", "[events][http]") {
    qt_test::temp_dir dir;
    qt_test::server_process server(dir.path(), {"--workers", "1"});
    const auto p = server.port();
    sse_client all(p, "/api/v1/events");
    REQUIRE(all.read_until([](const std::string& t) { return t.find("retry: ") != std::string::npos; }, 10s));
    CHECK_THAT(all.text(), Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("text/event-stream"));

    const auto id = upload_id(p, qt_test::synthetic_jpeg(1200, 900));
    REQUIRE(all.read_until([&](const std::string& t) { return has_final(t, id); }, 60s));
    auto evs = events_in(all.text());
    CHECK(states_of(evs, id) == std::vector<std::string>{"queued", "processing", "succeeded"});
    // Ids increase; the last event carries the outputs.
    for (std::size_t i = 1; i < evs.size(); ++i) CHECK(std::stoull(evs[i].id) == std::stoull(evs[i - 1].id) + 1);
    CHECK(evs.back().data.at("outputs").as_array().size() == 1);
    CHECK(evs.back().data.at("progress").as_int64() == 100);

    // A browser that dropped after the first event reconnects with it and misses nothing.
    sse_client again(p, "/api/v1/events", "Last-Event-ID: " + evs.front().id + "\r\n");
    REQUIRE(again.read_until([&](const std::string& t) { return events_in(t).size() >= evs.size() - 1; }, 10s));
    auto resumed = events_in(again.text());
    REQUIRE(resumed.size() == evs.size() - 1);
    for (std::size_t i = 0; i < resumed.size(); ++i) CHECK(resumed[i].id == evs[i + 1].id);

    // An id from another run cannot be resumed: the reader is told to reload.
    sse_client stale(p, "/api/v1/events", "Last-Event-ID: 42\r\n");
    REQUIRE(stale.read_until([](const std::string& t) { return t.find("event: reset") != std::string::npos; }, 10s));

    CHECK(qt_test::http_request(p, "GET", "/api/v1/events?job=nope").status == 400);
    CHECK(qt_test::http_request(p, "GET", "/api/v1/events?color=red").status == 400);
}

TEST_CASE("events: ?job= narrows the stream to one job", "[events][http]") {
    qt_test::temp_dir dir;
    qt_test::server_process server(dir.path(), {"--workers", "0"});
    const auto p = server.port();
    const auto img = qt_test::synthetic_jpeg(64, 48);
    const auto first = upload_id(p, img);
    // Subscribed to `first` only, from the start of the ring (Last-Event-ID 0 = all it has).
    sse_client one(p, "/api/v1/events?job=" + first + "&last_event_id=0");
    const auto second = upload_id(p, img);
    auto cancel = qt_test::http_request(p, "DELETE", "/api/v1/jobs/" + first);
    REQUIRE(cancel.status == 200);
    const bool seen = one.read_until([&](const std::string& t) {
        const auto s = states_of(events_in(t), first);
        return !s.empty() && s.back() == "cancelled";
    }, 10s);
    INFO(one.text());
    REQUIRE(seen);
    INFO(one.text());
    CHECK(states_of(events_in(one.text()), first) == std::vector<std::string>{"queued", "cancelled"});
    CHECK(states_of(events_in(one.text()), second).empty());
}

TEST_CASE("events: a client that never reads does not hold up the workers", "[events][http]") {
    qt_test::temp_dir dir;
    qt_test::server_process server(dir.path(), {"--workers", "2"});
    const auto p = server.port();
    // Subscribed with a tiny receive buffer and never read from: the server's writes fill it.
    sse_client stuck(p, "/api/v1/events", {}, 1024);
    sse_client watcher(p, "/api/v1/events");
    const auto img = qt_test::synthetic_jpeg(320, 240);
    std::vector<std::string> ids;
    for (int i = 0; i < 60; ++i) ids.push_back(upload_id(p, img));
    // Every job finishes, and a reader that does read sees every one of them finish.
    REQUIRE(watcher.read_until([&](const std::string& t) {
        for (const auto& id : ids)
            if (!has_final(t, id)) return false;
        return true;
    }, 120s));
    for (const auto& id : ids)
        CHECK(json::parse(qt_test::http_request(p, "GET", "/api/v1/jobs/" + id).body).at("state").as_string() ==
              "succeeded");
}

TEST_CASE("events: each change's event is the job GET returns right after it", "[events][http]") {
    qt_test::temp_dir dir;
    qt_test::server_process server(dir.path(), {"--workers", "1"});
    const auto p = server.port();
    sse_client all(p, "/api/v1/events");
    REQUIRE(all.read_until([](const std::string& t) { return t.find("retry: ") != std::string::npos; }, 10s));
    auto last_event_of = [&](const std::string& id) {
        json::object last;
        for (const auto& e : events_in(all.text()))
            if (e.type == "job" && e.data.at("id").as_string() == id) last = e.data;
        return last;
    };
    auto get_job = [&](const std::string& id) {
        auto r = qt_test::http_request(p, "GET", "/api/v1/jobs/" + id);
        REQUIRE(r.status == 200);
        return json::parse(r.body).as_object();
    };

    // Succeeded: the worker's last event is the row as committed, not a copy it made itself.
    const auto id = upload_id(p, qt_test::synthetic_jpeg(1200, 900));
    REQUIRE(all.read_until([&](const std::string& t) { return has_final(t, id); }, 60s));
    CHECK(last_event_of(id) == get_job(id));

    // A broken image fails, is retried by hand and fails again: the same for each final event.
    auto jpeg = qt_test::synthetic_jpeg(640, 480);
    jpeg.resize(jpeg.size() / 3);
    const auto broken = upload_id(p, jpeg);
    auto failed_times = [&](const std::string& t) {
        std::size_t n = 0;
        for (const auto& e : events_in(t))
            if (e.type == "job" && e.data.at("id").as_string() == broken && e.data.at("state").as_string() == "failed") ++n;
        return n;
    };
    REQUIRE(all.read_until([&](const std::string& t) { return failed_times(t) == 1; }, 60s));
    CHECK(last_event_of(broken) == get_job(broken));
    REQUIRE(qt_test::http_request(p, "POST", "/api/v1/jobs/" + broken + "/retry").status == 202);
    REQUIRE(all.read_until([&](const std::string& t) { return failed_times(t) == 2; }, 60s));
    CHECK(last_event_of(broken) == get_job(broken));
}
