// Store queries by key and time: idempotency keys, retention of expired jobs, and lists paginated by cursor.
#include "quickthumb/job.hpp"
#include "quickthumb/job_store.hpp"
#include "support/stores.hpp"
#include "support/catch_result.hpp"
#include "support/jobs.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("store: list is newest first and paginates with a cursor", "[store]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    std::vector<job> jobs;
    for (int i = 0; i < 7; ++i) jobs.push_back(make_job("f" + std::to_string(i)));
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(jobs);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(jobs[6].id);
            REQUIRE(r_);
        }
    }(), 10s);
    auto p1 = qt_test::read_now(s.list(std::nullopt, 3, std::nullopt));
    REQUIRE(p1.jobs.size() == 3);
    CHECK(p1.jobs[0].id == jobs[6].id);
    REQUIRE(p1.next_cursor);
    auto p2 = qt_test::read_now(s.list(std::nullopt, 3, p1.next_cursor));
    REQUIRE(p2.jobs.size() == 3);
    CHECK(p2.jobs[0].id == jobs[3].id);
    auto p3 = qt_test::read_now(s.list(std::nullopt, 3, p2.next_cursor));
    REQUIRE(p3.jobs.size() == 1);
    CHECK(p3.jobs[0].id == jobs[0].id);
    CHECK_FALSE(p3.next_cursor);
    auto processing = qt_test::read_now(s.list(job_state::processing, 10, std::nullopt));
    REQUIRE(processing.jobs.size() == 1);
    CHECK(processing.jobs[0].id == jobs[6].id);
}

TEST_CASE("store: an idempotency key names the jobs of its first request", "[store][idempotency]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    job first = make_job("first"), second = make_job("second"), other = make_job("other");
    const std::vector<job> v1{first}, v2{second}, v3{other};
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        auto r1 = co_await s.insert_once(v1, "key-1");
        REQUIRE(r1);
        CHECK_FALSE(r1->replayed);
        auto r2 = co_await s.insert_once(v2, "key-1");
        REQUIRE(r2);
        CHECK(r2->replayed);
        CHECK(r2->job_ids == std::vector<std::string>{first.id});
        auto r3 = co_await s.insert_once(v3, "key-2");
        REQUIRE(r3);
        CHECK_FALSE(r3->replayed);
    }(), 10s);
    CHECK_FALSE(qt_test::read_now(s.get(second.id)));  // the replay inserted nothing
    CHECK(qt_test::read_now(s.get(other.id)));
    CHECK(qt_test::read_now(s.idempotent_jobs("key-1", now_ms())) == std::vector<std::string>{first.id});
    CHECK_FALSE(qt_test::read_now(s.idempotent_jobs("key-1", now_ms() + job_store::idempotency_window_ms + 1)));  // expired
    CHECK_FALSE(qt_test::read_now(s.idempotent_jobs("nope", now_ms())));
}

TEST_CASE("store: retention removes only finished jobs older than the cutoff", "[store][retention]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    job done = make_job("done"), waiting = make_job("waiting"), failed = make_job("failed");
    const std::vector<job> all{done, waiting, failed};
    const job_source src{"x.jpg", 10, "jpeg", 8, 6};
    const std::vector<job_output> outs{{"thumb_8x6.jpg", 8, 6, 99}};
    const error bad{errc::corrupt_image, "bad"};
    std::int64_t t_after = 0;
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(all);
            REQUIRE(r_);
        }
        const std::vector<job> no_jobs;
        {
            auto r_ = co_await s.insert_once(no_jobs, "old-key");
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(done.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.succeed(done.id, src, outs);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(failed.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.fail(failed.id, src, bad);
            REQUIRE(r_);
        }
        t_after = now_ms() + 1;
        // Nothing is old enough for a cutoff in the past.
        auto none = qt_test::read_now(s.expired(t_after - 3'600'000, 10));
        CHECK(none.empty());
        auto ids = qt_test::read_now(s.expired(t_after, 10));
        CHECK(ids.size() == 2);
        auto n = co_await s.remove_expired(ids, t_after, t_after + job_store::idempotency_window_ms);
        REQUIRE(n);
        CHECK(*n == 2);
    }(), 10s);
    CHECK_FALSE(qt_test::read_now(s.get(done.id)));
    CHECK_FALSE(qt_test::read_now(s.get(failed.id)));
    CHECK(qt_test::read_now(s.get(waiting.id)));  // never swept while it waits
    CHECK_FALSE(qt_test::read_now(s.idempotent_jobs("old-key", 0)));  // keys past the window went too
}
