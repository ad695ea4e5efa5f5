// The jobs service in process, on a real store: every change is told to every subscriber, in
// commit order, as committed; the waiting count follows the changes.
#include "quickthumb/jobs_service.hpp"
#include "support/stores.hpp"
#include "support/catch_result.hpp"
#include "support/eventually.hpp"
#include "support/jobs.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <mutex>

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

using qt_test::heard;

std::string state_name(const std::optional<job_state>& s) { return s ? std::string(to_string(*s)) : "new"; }

// "id:previous->now" for each change: what a subscriber heard, in order.
std::vector<std::string> transitions(const std::vector<job_change>& cs) {
    std::vector<std::string> out;
    for (const auto& c : cs)
        out.push_back(c.now.id.substr(0, 4) + ":" + state_name(c.previous) + "->" + std::string(to_string(c.now.state)) +
                      (c.stored ? "" : " (progress " + std::to_string(c.now.progress) + ")"));
    return out;
}

std::string text(const job& j) { return boost::json::serialize(to_json(j)); }

// A service on a fresh data directory; io must outlive the store (its writer posts to it).
struct fixture {
    qt_test::temp_dir dir;
    asio::io_context io;
    asio::thread_pool blocking{2};
    std::unique_ptr<blob_store> files_owner = qt_test::open_blobs(dir.path());
    blob_store& files = *files_owner;
    std::unique_ptr<job_store> db_owner = qt_test::open_store(dir.path() / "quickthumb.db");
    job_store& db = *db_owner;
    jobs_service jobs{blocking, db, files};
    ~fixture() { blocking.join(); }
};

}  // namespace

TEST_CASE("jobs: two subscribers both hear every change, in commit order, as committed", "[jobs][store]") {
    fixture f;
    heard first, second;
    f.jobs.subscribe(std::ref(first));
    f.jobs.subscribe(std::ref(second));
    job a = make_job("a.jpg"), b = make_job("b.jpg"), marker = make_job("marker.jpg");
    std::vector<std::string> expected;
    auto tag = [](const job& j) { return j.id.substr(0, 4); };
    qt_test::run_for(f.io, [&]() -> asio::awaitable<void> {
        std::vector<job> ab{a, b};
        auto accepted = co_await f.jobs.accept(ab, std::nullopt);
        REQUIRE(accepted);
        CHECK_FALSE(accepted->replayed);
        REQUIRE(accepted->jobs.size() == 2);
        CHECK(accepted->jobs[0].seq > 0);
        auto started = co_await f.jobs.start(a.id);
        REQUIRE(started);
        CHECK(started->attempts == 1);
        f.jobs.progress(*started, 40);
        std::vector<job_output> outputs(1, job_output{"thumb_1x1.jpg", 1, 1, 3});
        auto done = co_await f.jobs.succeed(a.id, started->source, outputs, 0.25);
        REQUIRE(done);
        CHECK(done->state == job_state::succeeded);
        CHECK(done->outputs.size() == 1);
        auto cancelled = co_await f.jobs.cancel(b.id);
        REQUIRE(cancelled);
        // Cancelling again changes nothing and tells no one.
        auto again = co_await f.jobs.cancel(b.id);
        REQUIRE(again);
        CHECK(again->state == job_state::cancelled);
        // A succeeded job cannot be cancelled; the refusal is a value.
        auto refused = co_await f.jobs.cancel(a.id);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == errc::conflict);
        // Told after all of the above: anything they told wrongly would come before it.
        {
            auto r_ = co_await f.jobs.accept(std::vector<job>(1, marker), std::nullopt);
            REQUIRE(r_);
        }
    }(), 20s);
    expected = {tag(a) + ":new->queued",       tag(b) + ":new->queued",
                tag(a) + ":queued->processing", tag(a) + ":processing->processing (progress 40)",
                tag(a) + ":processing->succeeded", tag(b) + ":queued->cancelled",
                tag(marker) + ":new->queued"};
    qt_test::eventually([&] { return first.size() >= expected.size() && second.size() >= expected.size(); }, 10s,
                        "both subscribers heard every change");
    const auto one = first.copy(), two = second.copy();
    CHECK(transitions(one) == expected);
    CHECK(transitions(two) == expected);
    // What was told is the row as the store has it now (the last change of each job).
    CHECK(text(one[4].now) == text(*qt_test::read_now(f.db.get(a.id))));
    CHECK(text(one[5].now) == text(*qt_test::read_now(f.db.get(b.id))));
    CHECK(one[4].attempt_seconds == 0.25);
    CHECK_FALSE(one[2].attempt_seconds);
}

TEST_CASE("jobs: the waiting count follows the changes", "[jobs][store]") {
    fixture f;
    job a = make_job(), b = make_job(), c = make_job();
    const std::vector<job> abc{a, b, c};
    qt_test::run_for(f.io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await f.jobs.accept(abc, std::nullopt);
            REQUIRE(r_);
        }
        CHECK(f.jobs.waiting() == 3);
        {
            auto r_ = co_await f.jobs.start(a.id);
            REQUIRE(r_);
        }
        CHECK(f.jobs.waiting() == 2);
        {
            auto r_ = co_await f.jobs.cancel(b.id);  // a queued job leaves the queue
            REQUIRE(r_);
        }
        CHECK(f.jobs.waiting() == 1);
        {
            const job_source src;
            const error eio{errc::io_error, "EIO"};
            auto r_ = co_await f.jobs.retry_later(a.id, src, eio, now_ms() + 60'000, 0.1);
            REQUIRE(r_);
        }
        CHECK(f.jobs.waiting() == 2);  // queued again, not yet due
        {
            auto r_ = co_await f.jobs.start(c.id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await f.jobs.release(c.id);  // a shutdown gave it back
            REQUIRE(r_);
        }
        CHECK(f.jobs.waiting() == 2);
        // A retry needs the upload: none was stored for b.
        auto no_upload = co_await f.jobs.retry(b.id);
        REQUIRE_FALSE(no_upload);
        CHECK(no_upload.error().code == errc::conflict);
        CHECK(f.jobs.waiting() == 2);
        auto missing = co_await f.jobs.retry(new_job_id());
        REQUIRE_FALSE(missing);
        CHECK(missing.error().code == errc::not_found);
    }(), 20s);
    CHECK(f.jobs.waiting() == qt_test::read_now(f.db.count(job_state::queued)));
    // A restart counts the store again.
    CHECK(qt_test::wait_now(f.jobs.recover_interrupted()).requeued == 0);
    CHECK(f.jobs.waiting() == 2);
}

TEST_CASE("jobs: an idempotency key replays the first request's jobs and tells no one twice", "[jobs][store]") {
    fixture f;
    heard all;
    f.jobs.subscribe(std::ref(all));
    job a = make_job(), other = make_job(), marker = make_job();
    qt_test::run_for(f.io, [&]() -> asio::awaitable<void> {
        std::vector<job> one(1, a), two(1, other);
        auto first = co_await f.jobs.accept(one, std::string("key-1"));
        REQUIRE(first);
        CHECK_FALSE(first->replayed);
        auto second = co_await f.jobs.accept(two, std::string("key-1"));
        REQUIRE(second);
        CHECK(second->replayed);
        REQUIRE(second->jobs.size() == 1);
        CHECK(second->jobs[0].id == a.id);
        auto seen = co_await f.jobs.replay("key-1");
        REQUIRE(seen);
        REQUIRE(*seen);
        CHECK((*seen)->size() == 1);
        {
            auto r_ = co_await f.jobs.replay("key-2");
            REQUIRE(r_);
            CHECK_FALSE(*r_);
        }
        {
            auto r_ = co_await f.jobs.accept(std::vector<job>(1, marker), std::nullopt);
            REQUIRE(r_);
        }
    }(), 20s);
    qt_test::eventually([&] { return all.size() >= 2; }, 10s, "the new jobs were told");
    CHECK(transitions(all.copy()) ==
          std::vector<std::string>{a.id.substr(0, 4) + ":new->queued", marker.id.substr(0, 4) + ":new->queued"});
    CHECK(f.jobs.waiting() == 2);
}

TEST_CASE("jobs: an upload's files become its jobs' uploads - a replay keeps none of its own", "[jobs][store][storage]") {
    fixture f;
    auto received_of = [&](const std::string& bytes, std::unique_ptr<blob_store::upload>& keep) {
        auto up = qt_test::wait_now(f.files.begin_upload(new_job_id()));
        REQUIRE(up);
        const std::span<const std::uint8_t> span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        REQUIRE(qt_test::wait_now((*up)->append(span)));
        keep = std::move(*up);
        return jobs_service::received{keep.get(), "photo.jpg", static_cast<std::int64_t>(bytes.size())};
    };
    auto uploads_stored = [&] {
        int n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(f.dir.path() / "uploads")) ++n;
        return n;
    };
    std::unique_ptr<blob_store::upload> a, b, c;
    std::vector<jobs_service::received> first{received_of("first", a), received_of("second!", b)};
    std::vector<jobs_service::received> again{received_of("third", c)};
    job_params params;
    std::vector<job> made;
    qt_test::run_for(f.io, [&]() -> asio::awaitable<void> {
        auto r = co_await f.jobs.accept(first, params, 2, std::string("key-u"));
        REQUIRE(r);
        CHECK_FALSE(r->replayed);
        made = r->jobs;
        auto replay = co_await f.jobs.accept(again, params, 2, std::string("key-u"));
        REQUIRE(replay);
        CHECK(replay->replayed);
        REQUIRE(replay->jobs.size() == 2);
        CHECK(replay->jobs[0].id == made[0].id);
    }(), 20s);
    REQUIRE(made.size() == 2);
    CHECK(made[0].source.bytes == 5);
    CHECK(made[1].source.bytes == 7);
    CHECK(made[0].max_attempts == 2);
    for (const auto& j : made) {
        INFO(j.id);
        CHECK(qt_test::read_now(f.files.has_upload(j.id)));
        CHECK(qt_test::read_now(f.db.get(j.id)));
    }
    CHECK(std::string(reinterpret_cast<const char*>(qt_test::read_now(f.files.read_upload(made[1].id)).bytes().data()), 7) ==
          "second!");
    CHECK(uploads_stored() == 2);  // the replayed request's file went
    CHECK(f.jobs.waiting() == 2);
}

TEST_CASE("jobs: start-up removes old uploads no job owns, and only those", "[jobs][store][storage]") {
    fixture f;
    auto store_upload = [&](const std::string& id) {
        auto up = qt_test::wait_now(f.files.begin_upload(id));
        REQUIRE(up);
        REQUIRE(qt_test::wait_now((*up)->append(std::span<const std::uint8_t>())));
        REQUIRE(qt_test::wait_now(f.files.commit_uploads({up->get()})));
    };
    // An hour and more ago: what a crash between an upload's commit and its row's leaves.
    auto age = [&](const std::string& id) {
        std::filesystem::last_write_time(f.dir.path() / "uploads" / id,
                                         std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
    };
    job owned = make_job();
    const std::string orphan = new_job_id(), fresh = new_job_id();
    for (const auto& id : {owned.id, orphan, fresh}) store_upload(id);
    age(owned.id);
    age(orphan);
    const std::vector<job> one{owned};
    qt_test::run_for(f.io, [&]() -> asio::awaitable<void> {
        auto r = co_await f.jobs.accept(one, std::nullopt);
        REQUIRE(r);
    }(), 20s);
    qt_test::wait_now(f.jobs.recover_interrupted());
    CHECK_FALSE(qt_test::read_now(f.files.has_upload(orphan)));
    CHECK(qt_test::read_now(f.files.has_upload(owned.id)));  // its job has it
    CHECK(qt_test::read_now(f.files.has_upload(fresh)));     // maybe another instance's, mid-upload
}
