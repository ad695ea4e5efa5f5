// The store on disk: schema migration, group commit of concurrent writes, durability across reopening, and crash recovery.
#include "quickthumb/job.hpp"
#include "quickthumb/job_store.hpp"
#include "store/sqlite_store.hpp"
#include "support/stores.hpp"
#include "support/catch_result.hpp"
#include "support/jobs.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("store: schema is migrated and versioned", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    { auto s = open_sqlite_store(path); }
    { auto s = open_sqlite_store(path); }  // reopening an up-to-date file is a no-op
    SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
    CHECK(db.execAndGet("PRAGMA user_version").getInt() == sqlite_store::schema_version);
    CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
    db.exec("PRAGMA user_version = 99");
    CHECK_THROWS_WITH(open_sqlite_store(path), Catch::Contains("newer"));
}

TEST_CASE("store: failure keeps the error and recovery re-queues interrupted jobs", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    job a = make_job("a"), b = make_job("b"), c = make_job("c");
    const error truncated{errc::corrupt_image, "truncated JPEG"};
    const std::vector<job> abc{a, b, c};
    const job_source no_source{};
    {
        asio::io_context io;
        auto s_owner = open_sqlite_store(path);
        job_store& s = *s_owner;
        qt_test::run_for(io, [&]() -> asio::awaitable<void> {
            {
                auto r_ = co_await s.insert(abc);
                REQUIRE(r_);
            }
            {
                auto r_ = co_await s.start(a.id);
                REQUIRE(r_);
            }
            {
                auto r_ = co_await s.start(b.id);
                REQUIRE(r_);
            }
            {
                auto r_ = co_await s.fail(b.id, no_source, truncated);
                REQUIRE(r_);
            }
        }(), 10s);
    }
    auto s_owner = open_sqlite_store(path);  // "restart"
    job_store& s = *s_owner;
    CHECK(s.recover_interrupted().requeued == 1);
    CHECK(qt_test::read_now(s.get(a.id))->state == job_state::queued);
    CHECK(qt_test::read_now(s.get(a.id))->attempts == 1);
    auto failed = qt_test::read_now(s.get(b.id));
    CHECK(failed->state == job_state::failed);
    REQUIRE(failed->last_error);
    CHECK(failed->last_error->code == errc::corrupt_image);
    CHECK(failed->last_error->message == "truncated JPEG");
    CHECK(qt_test::read_now(s.count(job_state::queued)) == 2);
    CHECK(qt_test::read_now(s.due(now_ms(), 10)) == std::vector<std::string>{a.id, c.id});  // arrival order
}

TEST_CASE("store: concurrent writes are group-committed and each is durable", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    constexpr int n = 200;
    std::vector<std::string> ids;
    {
        asio::io_context io;
        auto s_owner = open_sqlite_store(path);
        job_store& s = *s_owner;
        int done = 0;
        for (int i = 0; i < n; ++i) {
            job j = make_job();
            ids.push_back(j.id);
            asio::co_spawn(io, [&s, &done, j]() -> asio::awaitable<void> {
                auto r = co_await s.insert(std::vector<job>(1, j));
                if (r) ++done;
            }, asio::detached);
        }
        io.run_for(30s);
        REQUIRE(done == n);
        // 200 inserts issued at once share transactions instead of paying one fsync each.
        CHECK(s.commits() < n / 2);
        // A write that throws is rolled back alone; its neighbours in the batch commit.
        qt_test::run_for(io, [&]() -> asio::awaitable<void> {
            job dup = make_job();
            dup.id = ids[0];  // UNIQUE violation
            auto refused = co_await s.insert(std::vector<job>(1, dup));
            REQUIRE_FALSE(refused);
            CHECK(refused.error().code == errc::io_error);  // a value, not an exception
            job fresh = make_job();
            {
                auto r_ = co_await s.insert(std::vector<job>(1, fresh));
                REQUIRE(r_);
            }
            ids.push_back(fresh.id);
        }(), 10s);
    }
    auto again_owner = open_sqlite_store(path);
    job_store& again = *again_owner;
    for (const auto& id : ids) CHECK(qt_test::read_now(again.get(id)));
    CHECK(qt_test::read_now(again.count(job_state::queued)) == n + 1);
}

TEST_CASE("store: recovery counts the attempt and fails a job interrupted every time", "[store][recovery]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    job a = make_job("a"), poison = make_job("poison");
    poison.max_attempts = 2;
    const std::vector<job> both{a, poison};
    {
        asio::io_context io;
        auto s_owner = open_sqlite_store(path);
        job_store& s = *s_owner;
        qt_test::run_for(io, [&]() -> asio::awaitable<void> {
            {
                auto r_ = co_await s.insert(both);
                REQUIRE(r_);
            }
            {
                auto r_ = co_await s.start(a.id);
                REQUIRE(r_);
            }
            {
                auto r_ = co_await s.start(poison.id);
                REQUIRE(r_);
            }
        }(), 10s);
    }
    {
        asio::io_context io;
        auto s_owner = open_sqlite_store(path);  // first "crash"
        job_store& s = *s_owner;
        auto r = s.recover_interrupted();
        CHECK(r.requeued == 2);
        CHECK(r.failed == 0);
        qt_test::run_for(io, [&]() -> asio::awaitable<void> {
            {
                auto r_ = co_await s.start(poison.id);
                REQUIRE(r_);
            }  // its second and last attempt
        }(), 10s);
    }
    auto s_owner = open_sqlite_store(path);  // second "crash"
    job_store& s = *s_owner;
    auto r = s.recover_interrupted();
    CHECK(r.requeued == 0);
    CHECK(r.failed == 1);
    CHECK(r.failed_ids == std::vector<std::string>{poison.id});
    auto p = qt_test::read_now(s.get(poison.id));
    CHECK(p->state == job_state::failed);
    CHECK(p->attempts == 2);
    REQUIRE(p->last_error);
    CHECK(p->last_error->code == errc::interrupted);
    CHECK_THAT(p->last_error->message, Catch::Contains("2 attempts"));
    CHECK(qt_test::read_now(s.get(a.id))->state == job_state::queued);
    CHECK(qt_test::read_now(s.get(a.id))->attempts == 1);
}
