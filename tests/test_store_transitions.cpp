// The job state machine, in the model and in the store: start/succeed/fail, retry_later and backoff, release, cancel and retry.
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
#include <string>
#include <string_view>
#include <vector>

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("job state machine", "[store]") {
    using enum job_state;
    CHECK(can_transition(queued, processing));
    CHECK(can_transition(queued, cancelled));
    CHECK_FALSE(can_transition(queued, succeeded));
    CHECK_FALSE(can_transition(queued, failed));
    CHECK(can_transition(processing, succeeded));
    CHECK(can_transition(processing, failed));
    CHECK(can_transition(processing, queued));
    CHECK_FALSE(can_transition(succeeded, queued));
    CHECK_FALSE(can_transition(succeeded, processing));
    CHECK(can_transition(failed, queued));
    CHECK(can_transition(cancelled, queued));
    CHECK_FALSE(can_transition(failed, processing));
    for (auto s : {queued, processing, succeeded, failed, cancelled}) CHECK(parse_job_state(to_string(s)) == s);
    CHECK_FALSE(parse_job_state("done"));
    CHECK(is_final(succeeded));
    CHECK_FALSE(is_final(processing));
}

TEST_CASE("store: a job's life through the state machine", "[store]") {
    qt_test::temp_dir dir;
    // Declared before the store: its writer thread is still inside post() to io after the last
    // result is delivered, so io must outlive it (a race TSan reported on the condition variable).
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    job j = make_job();
    // Built outside the coroutine: GCC 12 rejects initializer lists inside one ("array used as initializer").
    const job_source src{"a.jpg", 10, "jpeg", 800, 600};
    const std::vector<job_output> outs{{"thumb_256x192.jpg", 256, 192, 999}};
    const error boom{errc::io_error, "x"};
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(std::vector<job>(1, j));
            REQUIRE(r_);
        }
        auto got = qt_test::read_now(s.get(j.id));
        REQUIRE(got);
        CHECK(got->state == job_state::queued);
        CHECK(got->source.filename == std::string_view("a.jpg"));

        auto started = co_await s.start(j.id);
        REQUIRE(started);
        CHECK(started->state == job_state::processing);
        CHECK(started->attempts == 1);

        // A second start is refused: the job is not queued any more.
        auto again = co_await s.start(j.id);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == errc::bad_request);

        {
            auto r_ = co_await s.set_progress(j.id, 50);
            REQUIRE(r_);
        }
        CHECK(qt_test::read_now(s.get(j.id))->progress == 50);

        {
            auto r_ = co_await s.succeed(j.id, src, outs);
            REQUIRE(r_);
        }
        auto done = qt_test::read_now(s.get(j.id));
        CHECK(done->state == job_state::succeeded);
        CHECK(done->progress == 100);
        CHECK(done->source.width == 800);
        REQUIRE(done->outputs.size() == 1);
        CHECK(done->outputs[0].height == 192);

        // succeeded is final
        auto refail = co_await s.fail(j.id, src, boom);
        CHECK_FALSE(refail);
        auto missing = co_await s.start(new_job_id());
        REQUIRE_FALSE(missing);
        CHECK(missing.error().code == errc::not_found);
    }(), 10s);
}

TEST_CASE("job life: retry backoff doubles with jitter and is capped", "[store][retry]") {
    // Half to all of the step: 1 s, 2 s, 4 s, ... up to 5 min.
    CHECK(retry_delay_ms(1, 0.0) == 500);
    CHECK(retry_delay_ms(1, 0.999999) >= 999);
    CHECK(retry_delay_ms(2, 0.0) == 1000);
    CHECK(retry_delay_ms(3, 0.5) == 3000);
    CHECK(retry_delay_ms(40, 1.0) == retry_cap_ms);
    CHECK(retry_delay_ms(40, 0.0) == retry_cap_ms / 2);
    CHECK(retry_delay_ms(0, 0.0) == 500);  // never negative or zero, whatever the input
    for (int a = 1; a < 12; ++a) CHECK(retry_delay_ms(a + 1, 0.0) >= retry_delay_ms(a, 0.0));
    CHECK(is_transient(errc::io_error));
    CHECK(is_transient(errc::storage_full));
    CHECK(is_transient(errc::timeout));
    CHECK_FALSE(is_transient(errc::corrupt_image));
    CHECK_FALSE(is_transient(errc::too_many_pixels));
    CHECK_FALSE(is_transient(errc::unsupported_format));
    CHECK_FALSE(is_transient(errc::cancelled));
}

TEST_CASE("store: a transient failure waits for run_after and a release does not count", "[store][retry]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    job a = make_job("a"), b = make_job("b");
    const std::vector<job> ab{a, b};
    const error disk{errc::storage_full, "no space left on device"};
    const job_source src{"a.jpg", 10, "jpeg", 800, 600};
    const std::int64_t later = now_ms() + 60'000;
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(ab);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(a.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.retry_later(a.id, src, disk, later);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(b.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.release(b.id);
            REQUIRE(r_);
        }
        // Retrying a job that is not processing is refused.
        auto again = co_await s.retry_later(a.id, src, disk, later);
        CHECK_FALSE(again);
    }(), 10s);
    auto ja = qt_test::read_now(s.get(a.id));
    CHECK(ja->state == job_state::queued);
    CHECK(ja->attempts == 1);
    CHECK(ja->run_after == later);
    REQUIRE(ja->last_error);
    CHECK(ja->last_error->code == errc::storage_full);
    CHECK(to_json(*ja).at("retry_at").is_string());
    CHECK(qt_test::read_now(s.get(b.id))->attempts == 0);  // released by a shutdown: not an attempt
    // Only b is due now; a becomes due at `later`, and the feeder is told when.
    CHECK(qt_test::read_now(s.due(now_ms(), 10)) == std::vector<std::string>{b.id});
    CHECK(qt_test::read_now(s.next_due_after(now_ms())) == later);
    CHECK(qt_test::read_now(s.due(later, 10)) == std::vector<std::string>{a.id, b.id});  // oldest first
}

TEST_CASE("store: cancel and retry follow the state machine", "[store][cancel]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto s_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    job q = make_job("q"), p = make_job("p"), d = make_job("d");
    const std::vector<job> all{q, p, d};
    const job_source src{"x.jpg", 10, "jpeg", 8, 6};
    const std::vector<job_output> outs{{"thumb_8x6.jpg", 8, 6, 99}};
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(all);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(p.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(d.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.succeed(d.id, src, outs);
            REQUIRE(r_);
        }

        auto cq = co_await s.cancel(q.id);
        REQUIRE(cq);
        CHECK(cq->previous == job_state::queued);
        CHECK(cq->now.state == job_state::cancelled);
        auto cp = co_await s.cancel(p.id);
        REQUIRE(cp);
        CHECK(cp->previous == job_state::processing);
        // The worker's late success is refused: the job stays cancelled.
        {
            auto r_ = co_await s.succeed(p.id, src, outs);
            CHECK_FALSE(r_);
        }
        // Cancelling twice is harmless; a finished job cannot be cancelled; a missing one is 404.
        auto twice = co_await s.cancel(q.id);
        REQUIRE(twice);
        CHECK(twice->previous == job_state::cancelled);
        auto done = co_await s.cancel(d.id);
        REQUIRE_FALSE(done);
        CHECK(done.error().code == errc::conflict);
        auto missing = co_await s.cancel(new_job_id());
        REQUIRE_FALSE(missing);
        CHECK(missing.error().code == errc::not_found);

        // Retry: cancelled and failed jobs start over; a succeeded one cannot.
        auto rq = co_await s.retry(q.id);
        REQUIRE(rq);
        CHECK(rq->previous == job_state::cancelled);
        CHECK(rq->now.state == job_state::queued);
        CHECK(rq->now.attempts == 0);
        CHECK_FALSE(rq->now.last_error);
        auto rd = co_await s.retry(d.id);
        REQUIRE_FALSE(rd);
        CHECK(rd.error().code == errc::conflict);
        // A cancelled job cannot be started (a stale id in the channel is skipped).
        auto sp = co_await s.start(p.id);
        CHECK_FALSE(sp);
    }(), 10s);
    CHECK(qt_test::read_now(s.get(p.id))->state == job_state::cancelled);
    CHECK(qt_test::read_now(s.get(p.id))->last_error->code == errc::cancelled);
}
