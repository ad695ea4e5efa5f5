// What only the Redis store does, on a real redis-server: the work stream shared by consumers
// (one per instance), leases, claims of a consumer gone quiet, the refusal of a presumed-dead
// runner's outcome, delayed jobs moved to the stream when due, and the events stream.
#include "quickthumb/redis_store.hpp"

#include "support/catch_result.hpp"
#include "support/jobs.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"
#include "support/stores.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace quickthumb;
using qt_test::read_now;
using qt_test::wait_now;

namespace {

std::unique_ptr<redis_job_store> open_as(const qt_test::redis_process& redis, const std::string& consumer) {
    auto url = parse_redis_url(redis.url());
    REQUIRE(url.has_value());
    redis_store_options o;
    o.prefix = "w:";
    o.consumer = consumer;
    return open_redis_store(*url, o);
}

std::vector<std::string> jobs_of(const std::vector<work_entry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.job);
    return out;
}

}  // namespace

TEST_CASE("redis store: consumers share the work stream - a quiet one's jobs are claimed and its outcome refused",
          "[redis][store][store_redis]") {
    QT_REQUIRE_REDIS_SERVER();
    qt_test::temp_dir dir;
    qt_test::redis_process redis(dir.path() / "redis");
    auto a = open_as(redis, "a");
    auto b = open_as(redis, "b");
    const job j1 = qt_test::make_job("1.jpg"), j2 = qt_test::make_job("2.jpg");
    read_now(a->insert({j1, j2}));
    // Each entry goes to one consumer.
    const auto got_a = read_now(a->take(1));
    const auto got_b = read_now(b->take(10));
    REQUIRE(jobs_of(got_a) == std::vector<std::string>{j1.id});
    REQUIRE(jobs_of(got_b) == std::vector<std::string>{j2.id});
    CHECK(read_now(a->take(10)).empty());
    read_now(a->start(j1.id));
    // A renews its lease: nothing is idle long enough to claim.
    CHECK(read_now(a->refresh({got_a[0].entry})).empty());
    CHECK(read_now(b->claim_idle(std::chrono::seconds(10), 10)).empty());
    // A goes quiet: B claims its entry; the job it was running is queued again, its attempt kept.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the entry's idle time must pass 10 ms
    CHECK(read_now(b->refresh({got_b[0].entry})).empty());       // B's own stays B's
    const auto claimed = read_now(b->claim_idle(std::chrono::milliseconds(10), 10));
    REQUIRE(jobs_of(claimed) == std::vector<std::string>{j1.id});
    auto now = read_now(b->get(j1.id));
    REQUIRE(now);
    CHECK(now->state == job_state::queued);
    CHECK(now->attempts == 1);
    // A's lease is gone: it hears that it holds the entry no more.
    CHECK(read_now(a->refresh({got_a[0].entry})) == std::vector<std::string>{got_a[0].entry});
    auto started = read_now(b->start(j1.id));
    CHECK(started.attempts == 2);
    // A comes back with an outcome: refused, since B runs the job now; B's is taken.
    auto late = wait_now(a->succeed(j1.id, {}, {}));
    REQUIRE_FALSE(late);
    CHECK(late.error().code == errc::conflict);
    CHECK_THAT(late.error().message, Catch::Contains("another one claimed it"));
    auto done = wait_now(b->succeed(j1.id, {}, {}));
    REQUIRE(done);
    CHECK(done->state == job_state::succeeded);
    // The finished job's entry left the stream: nothing to claim, nothing pending for anyone.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(jobs_of(read_now(a->claim_idle(std::chrono::milliseconds(10), 10))) == std::vector<std::string>{j2.id});
}

TEST_CASE("redis store: a delayed retry waits outside the stream and moves to it when due - events tell every change",
          "[redis][store][store_redis]") {
    QT_REQUIRE_REDIS_SERVER();
    qt_test::temp_dir dir;
    qt_test::redis_process redis(dir.path() / "redis");
    auto a = open_as(redis, "a");
    const job j = qt_test::make_job();
    read_now(a->insert({j}));
    REQUIRE(read_now(a->take(10)).size() == 1);
    read_now(a->start(j.id));
    const auto due = now_ms() + 60'000;
    read_now(a->retry_later(j.id, {}, error{errc::io_error, "disk hiccup"}, due));
    // Not in the stream before it is due.
    auto early = read_now(a->promote_due(now_ms()));
    CHECK(early.moved == 0);
    CHECK(early.next_due == due);
    CHECK(read_now(a->take(10)).empty());
    auto late = read_now(a->promote_due(due));
    CHECK(late.moved == 1);
    CHECK(late.next_due == 0);
    CHECK(jobs_of(read_now(a->take(10))) == std::vector<std::string>{j.id});
    // Every change is on the events stream, in order, with the consumer that made it.
    auto events = read_now(a->events_after("", 100));
    std::vector<std::string> states;
    for (const auto& e : events) {
        CHECK(e.by == "a");
        CHECK(e.change.now.id == j.id);
        states.emplace_back(to_string(e.change.now.state));
    }
    CHECK(states == std::vector<std::string>{"queued", "processing", "queued"});
    CHECK(event_number(events.back().id) > event_number(events.front().id));
    auto latest = read_now(a->latest_events(2));
    REQUIRE(latest.size() == 2);
    CHECK(latest.back().id == events.back().id);
    CHECK(read_now(a->wait_events(events.back().id, 10, std::chrono::milliseconds(50))).empty());
}
