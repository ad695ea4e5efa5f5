#include "quickthumb/job_queue.hpp"
#include "support/stores.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <boost/asio/as_tuple.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include "support/jobs.hpp"

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("queue: the feeder hands every queued job over once / in order / through a small channel", "[queue]") {
    qt_test::temp_dir dir;
    // Declared before the store: its writer thread is still inside post() to io after the last
    // result is delivered, so io must outlive it (a race TSan reported on the condition variable).
    asio::io_context io;
    auto db_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& db = *db_owner;
    asio::thread_pool blocking(2);
    job_queue queue(blocking, db, 2);  // far smaller than the backlog

    std::vector<std::string> before, after;
    for (int i = 0; i < 10; ++i) before.push_back(make_job().id);
    for (int i = 0; i < 15; ++i) after.push_back(make_job().id);

    std::vector<std::string> received;
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        std::vector<job> first;
        for (auto& id : before) { job j = make_job(); j.id = id; first.push_back(j); }
        {
            auto r_ = co_await db.insert(first);
            REQUIRE(r_);
        }
        queue.start();
        for (int i = 0; i < 10; ++i) {
            auto [ec, id] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
            REQUIRE_FALSE(ec);
            received.push_back(id);
        }
        // Jobs that arrive later wake the feeder.
        std::vector<job> second;
        for (auto& id : after) { job j = make_job(); j.id = id; second.push_back(j); }
        {
            auto r_ = co_await db.insert(second);
            REQUIRE(r_);
        }
        queue.wake();
        for (int i = 0; i < 15; ++i) {
            auto [ec, id] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
            REQUIRE_FALSE(ec);
            received.push_back(id);
        }
        queue.close();
        auto [ec, id] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
        CHECK(ec);  // closed, nothing more
    }(), 20s);
    std::vector<std::string> expected = before;
    expected.insert(expected.end(), after.begin(), after.end());
    CHECK(received == expected);
    blocking.join();
}

TEST_CASE("queue: a job queued again behind the others is handed over when it is due", "[queue][retry]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    auto db_owner = qt_test::open_store(dir.path() / "q.db");
    job_store& db = *db_owner;
    asio::thread_pool blocking(2);
    job_queue queue(blocking, db, 4);
    job a = make_job(), b = make_job(), c = make_job();
    const std::vector<job> abc{a, b, c};
    const error flaky{errc::io_error, "EIO"};
    const job_source src{};
    std::vector<std::string> order;
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await db.insert(abc);
            REQUIRE(r_);
        }
        queue.start();
        auto [e1, first] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
        REQUIRE(first == a.id);
        {
            auto r_ = co_await db.start(a.id);
            REQUIRE(r_);
        }
        queue.on_taken(a.id);
        // a fails for a passing reason and is due again a little later, behind b and c's arrival.
        {
            auto r_ = co_await db.retry_later(a.id, src, flaky, now_ms() + 150);
            REQUIRE(r_);
        }
        queue.wake();
        for (int i = 0; i < 3; ++i) {
            auto [ec, id] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
            REQUIRE_FALSE(ec);
            order.push_back(id);
            // Started at once, so that no id stays handed out (a stale one must not come twice).
            auto r_ = co_await db.start(id);
            REQUIRE(r_);
            queue.on_taken(id);
        }
        queue.close();
    }(), 20s);
    // b and c first (a was not due); a comes back once it is, and nothing comes twice.
    CHECK(order == std::vector<std::string>{b.id, c.id, a.id});
    blocking.join();
}
