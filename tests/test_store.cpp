#include "quickthumb/job.hpp"
#include "quickthumb/store.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include "support/jobs.hpp"
#include <set>

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

TEST_CASE("job params: defaults and validation", "[store]") {
    auto p = parse_job_params({});
    REQUIRE(p);
    CHECK(p->sizes == std::vector<box>{{256, 256}});
    CHECK(p->fit == fit_mode::contain);
    CHECK(p->format == output_format::jpeg);
    CHECK(p->quality == 80);
    CHECK_FALSE(p->progressive);
    CHECK_FALSE(p->enlarge);
    CHECK_FALSE(p->keep_metadata);
    CHECK(p->background == colour{255, 255, 255});

    auto w = parse_job_params({{"width", "100"}});
    REQUIRE(w);
    CHECK(w->sizes == std::vector<box>{{100, 0}});  // the aspect ratio decides the height

    auto full = parse_job_params({{"width", "100"}, {"height", "50"}, {"fit", "cover"}, {"format", "png"}, {"quality", "90"}});
    REQUIRE(full);
    CHECK(full->sizes == std::vector<box>{{100, 50}});
    CHECK(full->fit == fit_mode::cover);
    CHECK(full->format == output_format::png);
    CHECK(full->quality == 90);

    // A one-sided box works in every mode: the engine scales to that side.
    auto cover_one = parse_job_params({{"width", "100"}, {"fit", "cover"}});
    REQUIRE(cover_one);
    CHECK(cover_one->sizes == std::vector<box>{{100, 0}});

    auto bad = [](std::multimap<std::string, std::string> f) {
        auto r = parse_job_params(f);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        return r.error().message;
    };
    CHECK_THAT(bad({{"width", "0"}}), Catch::Contains("width"));
    CHECK_THAT(bad({{"width", "abc"}}), Catch::Contains("width"));
    CHECK_THAT(bad({{"height", "99999"}}), Catch::Contains("height") && Catch::Contains("8192"));
    CHECK_THAT(bad({{"quality", "101"}}), Catch::Contains("quality"));
    CHECK_THAT(bad({{"fit", "stretch"}}), Catch::Contains("contain") && Catch::Contains("fill"));
    CHECK_THAT(bad({{"format", "gif"}}), Catch::Contains("format") && Catch::Contains("webp"));
    CHECK_THAT(bad({{"colour", "red"}}), Catch::Contains("unknown option") && Catch::Contains("sizes"));
    CHECK_THAT(bad({{"width", "1"}, {"width", "2"}}), Catch::Contains("more than once"));
}

TEST_CASE("job params: sizes and the new output options", "[store]") {
    auto p = parse_job_params({{"sizes", "128,256, 1024"}});
    REQUIRE(p);
    CHECK(p->sizes == std::vector<box>{{128, 128}, {256, 256}, {1024, 1024}});

    auto mixed = parse_job_params({{"sizes", "640x480,300x,x200,64,64x64,8192"}});
    REQUIRE(mixed);
    // 64 and 64x64 are the same box: one output.
    CHECK(mixed->sizes == std::vector<box>{{640, 480}, {300, 0}, {0, 200}, {64, 64}, {8192, 8192}});

    auto opts = parse_job_params({{"fit", "fill"},
                                  {"format", "webp"},
                                  {"enlarge", "true"},
                                  {"progressive", "1"},
                                  {"keep_metadata", "true"},
                                  {"background", "#FF8000"}});
    REQUIRE(opts);
    CHECK(opts->fit == fit_mode::fill);
    CHECK(opts->format == output_format::webp);
    CHECK(opts->enlarge);
    CHECK(opts->progressive);
    CHECK(opts->keep_metadata);
    CHECK(opts->background == colour{255, 128, 0});
    auto no = parse_job_params({{"enlarge", "0"}, {"progressive", "false"}, {"background", "102030"}, {"format", "jpg"}});
    REQUIRE(no);
    CHECK_FALSE(no->enlarge);
    CHECK_FALSE(no->progressive);
    CHECK(no->background == colour{0x10, 0x20, 0x30});
    CHECK(no->format == output_format::jpeg);

    auto bad = [](std::multimap<std::string, std::string> f) {
        auto r = parse_job_params(f);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        return r.error().message;
    };
    for (std::string s : {"", "0", "8193", "abc", "64,", ",64", "64,,128", "x", "0x0", "0x64", "64x0", "64X64",
                          "64x64x64", "-5", "+5", "1.5", "1,2,3,4,5,6,7,8,9"}) {
        INFO("sizes=" << s);
        CHECK_THAT(bad({{"sizes", s}}), Catch::Contains("sizes") && Catch::Contains("WxH"));
    }
    CHECK_THAT(bad({{"sizes", "1,2,3,4,5,6,7,8,9"}}), Catch::Contains("more than 8"));
    CHECK(parse_job_params({{"sizes", "1,2,3,4,5,6,7,8"}}));
    CHECK_THAT(bad({{"sizes", "64"}, {"width", "64"}}), Catch::Contains("either sizes or width/height"));
    CHECK_THAT(bad({{"sizes", "64"}, {"height", "64"}}), Catch::Contains("either sizes or width/height"));
    for (std::string name : {"enlarge", "progressive", "keep_metadata"}) {
        CHECK_THAT(bad({{name, "yes"}}), Catch::Contains(name) && Catch::Contains("true, false, 1 or 0"));
        CHECK_THAT(bad({{name, ""}}), Catch::Contains(name));
    }
    for (std::string c : {"", "#fff", "white", "#12345g", "#1234567", "##123456", " 123456"})
        CHECK_THAT(bad({{"background", c}}), Catch::Contains("background") && Catch::Contains("#rrggbb"));
}

TEST_CASE("job params: names and parsers agree", "[store]") {
    for (auto f : {fit_mode::contain, fit_mode::cover, fit_mode::fill}) CHECK(parse_fit_mode(to_string(f)) == f);
    for (auto f : {output_format::jpeg, output_format::png, output_format::webp})
        CHECK(parse_output_format(to_string(f)) == f);
    CHECK(extension(output_format::jpeg) == "jpg");
    CHECK(extension(output_format::webp) == "webp");
    CHECK(mime_type(output_format::webp) == "image/webp");
    CHECK(to_string(colour{0, 0x80, 0xff}) == "#0080ff");
    CHECK(parse_colour("#0080ff") == colour{0, 0x80, 0xff});
}

TEST_CASE("job ids are 22 url-safe characters and unique", "[store]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = new_job_id();
        CHECK(is_valid_job_id(id));
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);
    CHECK_FALSE(is_valid_job_id("../../etc/passwd"));
    CHECK_FALSE(is_valid_job_id(""));
    CHECK_FALSE(is_valid_job_id("aaaaaaaaaaaaaaaaaaaaa/"));
}

TEST_CASE("job JSON round trip of params and outputs", "[store]") {
    job j;
    j.id = new_job_id();
    j.state = job_state::succeeded;
    j.outputs = {{"thumb_256x128.jpg", 256, 128, 1234}, {"thumb_64x32.jpg", 64, 32, 99}};
    j.last_error = error{errc::corrupt_image, "bad"};
    auto o = to_json(j);
    CHECK(o.at("state").as_string() == "succeeded");
    CHECK(o.at("outputs").as_array().size() == 2);
    CHECK(o.at("outputs").as_array()[0].as_object().at("url").as_string() == "/thumbs/" + j.id + "/thumb_256x128.jpg");
    CHECK(o.at("error").as_object().at("code").as_string() == "corrupt_image");
    const auto& params = o.at("params").as_object();
    CHECK(params.at("sizes").as_array().at(0).at("width").as_int64() == 256);
    CHECK(params.at("background").as_string() == "#ffffff");
    auto outs = outputs_from_json(outputs_to_json(j.outputs));
    REQUIRE(outs.size() == 2);
    CHECK(outs[0].name == "thumb_256x128.jpg");
    CHECK(outs[0].bytes == 1234);
    CHECK(outs[1].name == "thumb_64x32.jpg");

    // Every option survives the store's JSON.
    job_params p;
    p.sizes = {{128, 128}, {300, 0}, {0, 200}, {640, 480}};
    p.fit = fit_mode::fill;
    p.format = output_format::webp;
    p.quality = 55;
    p.progressive = true;
    p.enlarge = true;
    p.background = {1, 2, 3};
    p.keep_metadata = true;
    auto back = job_params_from_json(boost::json::serialize(to_json(p)));
    REQUIRE(back);
    CHECK(back->sizes == p.sizes);
    CHECK(back->fit == p.fit);
    CHECK(back->format == p.format);
    CHECK(back->quality == p.quality);
    CHECK(back->progressive);
    CHECK(back->enlarge);
    CHECK(back->background == p.background);
    CHECK(back->keep_metadata);

}

TEST_CASE("job params stored by an older version stay readable", "[store]") {
    // What the first version wrote: one box as width/height, no new keys.
    auto old = job_params_from_json(R"({"width":300,"height":0,"fit":"cover","format":"png","quality":70})");
    REQUIRE(old);
    CHECK(old->sizes == std::vector<box>{{300, 0}});
    CHECK(old->fit == fit_mode::cover);
    CHECK(old->format == output_format::png);
    CHECK(old->quality == 70);
    CHECK_FALSE(old->enlarge);
    CHECK_FALSE(old->progressive);
    CHECK_FALSE(old->keep_metadata);
    CHECK(old->background == colour{});

    auto defaults = job_params_from_json("{}");
    REQUIRE(defaults);
    CHECK(defaults->sizes == std::vector<box>{{256, 256}});

    CHECK_FALSE(job_params_from_json("[]"));
    CHECK_FALSE(job_params_from_json(R"({"fit":"squash"})"));
    CHECK_FALSE(job_params_from_json(R"({"sizes":[]})"));
    CHECK_FALSE(job_params_from_json(R"({"sizes":[{"width":0,"height":0}]})"));
    CHECK_FALSE(job_params_from_json(R"({"enlarge":"yes"})"));
}

TEST_CASE("store: schema is migrated and versioned", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    { store s(path); }
    { store s(path); }  // reopening an up-to-date file is a no-op
    SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
    CHECK(db.execAndGet("PRAGMA user_version").getInt() == store::schema_version);
    CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
    db.exec("PRAGMA user_version = 99");
    CHECK_THROWS_WITH(store(path), Catch::Contains("newer"));
}

TEST_CASE("store: a job's life through the state machine", "[store]") {
    qt_test::temp_dir dir;
    // Declared before the store: its writer thread is still inside post() to io after the last
    // result is delivered, so io must outlive it (a race TSan reported on the condition variable).
    asio::io_context io;
    store s(dir.path() / "q.db");
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
        auto got = s.get(j.id);
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
        CHECK(s.get(j.id)->progress == 50);

        {
            auto r_ = co_await s.succeed(j.id, src, outs);
            REQUIRE(r_);
        }
        auto done = s.get(j.id);
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

TEST_CASE("store: failure keeps the error and recovery re-queues interrupted jobs", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    job a = make_job("a"), b = make_job("b"), c = make_job("c");
    const error truncated{errc::corrupt_image, "truncated JPEG"};
    const std::vector<job> abc{a, b, c};
    const job_source no_source{};
    {
        asio::io_context io;
        store s(path);
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
    store s(path);  // "restart"
    CHECK(s.recover_interrupted().requeued == 1);
    CHECK(s.get(a.id)->state == job_state::queued);
    CHECK(s.get(a.id)->attempts == 1);
    auto failed = s.get(b.id);
    CHECK(failed->state == job_state::failed);
    REQUIRE(failed->last_error);
    CHECK(failed->last_error->code == errc::corrupt_image);
    CHECK(failed->last_error->message == "truncated JPEG");
    CHECK(s.count(job_state::queued) == 2);
    auto q = s.queued_after(0, 10);
    REQUIRE(q.size() == 2);
    CHECK(q[0].second == a.id);  // arrival order
    CHECK(q[1].second == c.id);
    CHECK(s.queued_after(q[0].first, 10).size() == 1);
}

TEST_CASE("store: list is newest first and paginates with a cursor", "[store]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    store s(dir.path() / "q.db");
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
    auto p1 = s.list(std::nullopt, 3, std::nullopt);
    REQUIRE(p1.jobs.size() == 3);
    CHECK(p1.jobs[0].id == jobs[6].id);
    REQUIRE(p1.next_cursor);
    auto p2 = s.list(std::nullopt, 3, p1.next_cursor);
    REQUIRE(p2.jobs.size() == 3);
    CHECK(p2.jobs[0].id == jobs[3].id);
    auto p3 = s.list(std::nullopt, 3, p2.next_cursor);
    REQUIRE(p3.jobs.size() == 1);
    CHECK(p3.jobs[0].id == jobs[0].id);
    CHECK_FALSE(p3.next_cursor);
    auto processing = s.list(job_state::processing, 10, std::nullopt);
    REQUIRE(processing.jobs.size() == 1);
    CHECK(processing.jobs[0].id == jobs[6].id);
}

TEST_CASE("store: concurrent writes are group-committed and each is durable", "[store]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    constexpr int n = 200;
    std::vector<std::string> ids;
    {
        asio::io_context io;
        store s(path);
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
            bool threw = false;
            try {
                co_await s.insert(std::vector<job>(1, dup));
            } catch (const std::exception&) {
                threw = true;
            }
            CHECK(threw);
            job fresh = make_job();
            {
                auto r_ = co_await s.insert(std::vector<job>(1, fresh));
                REQUIRE(r_);
            }
            ids.push_back(fresh.id);
        }(), 10s);
    }
    store again(path);
    for (const auto& id : ids) CHECK(again.get(id));
    CHECK(again.count(job_state::queued) == n + 1);
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
    store s(dir.path() / "q.db");
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
    auto ja = s.get(a.id);
    CHECK(ja->state == job_state::queued);
    CHECK(ja->attempts == 1);
    CHECK(ja->run_after == later);
    REQUIRE(ja->last_error);
    CHECK(ja->last_error->code == errc::storage_full);
    CHECK(to_json(*ja).at("retry_at").is_string());
    CHECK(s.get(b.id)->attempts == 0);  // released by a shutdown: not an attempt
    // Only b is due now; a becomes due at `later`, and the feeder is told when.
    CHECK(s.due(now_ms(), 10) == std::vector<std::string>{b.id});
    CHECK(s.next_due_after(now_ms()) == later);
    CHECK(s.due(later, 10) == std::vector<std::string>{a.id, b.id});  // oldest first
}

TEST_CASE("store: cancel and retry follow the state machine", "[store][cancel]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    store s(dir.path() / "q.db");
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
    CHECK(s.get(p.id)->state == job_state::cancelled);
    CHECK(s.get(p.id)->last_error->code == errc::cancelled);
}

TEST_CASE("store: recovery counts the attempt and fails a job interrupted every time", "[store][recovery]") {
    qt_test::temp_dir dir;
    auto path = dir.path() / "q.db";
    job a = make_job("a"), poison = make_job("poison");
    poison.max_attempts = 2;
    const std::vector<job> both{a, poison};
    {
        asio::io_context io;
        store s(path);
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
        store s(path);  // first "crash"
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
    store s(path);  // second "crash"
    auto r = s.recover_interrupted();
    CHECK(r.requeued == 0);
    CHECK(r.failed == 1);
    CHECK(r.failed_ids == std::vector<std::string>{poison.id});
    auto p = s.get(poison.id);
    CHECK(p->state == job_state::failed);
    CHECK(p->attempts == 2);
    REQUIRE(p->last_error);
    CHECK(p->last_error->code == errc::interrupted);
    CHECK_THAT(p->last_error->message, Catch::Contains("2 attempts"));
    CHECK(s.get(a.id)->state == job_state::queued);
    CHECK(s.get(a.id)->attempts == 1);
}

TEST_CASE("store: an idempotency key names the jobs of its first request", "[store][idempotency]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    store s(dir.path() / "q.db");
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
    CHECK_FALSE(s.get(second.id));  // the replay inserted nothing
    CHECK(s.get(other.id));
    CHECK(s.idempotent_jobs("key-1", now_ms()) == std::vector<std::string>{first.id});
    CHECK_FALSE(s.idempotent_jobs("key-1", now_ms() + store::idempotency_window_ms + 1));  // expired
    CHECK_FALSE(s.idempotent_jobs("nope", now_ms()));
}

TEST_CASE("store: retention removes only finished jobs older than the cutoff", "[store][retention]") {
    qt_test::temp_dir dir;
    asio::io_context io;
    store s(dir.path() / "q.db");
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
        auto none = s.expired(t_after - 3'600'000, 10);
        CHECK(none.empty());
        auto ids = s.expired(t_after, 10);
        CHECK(ids.size() == 2);
        auto n = co_await s.remove_expired(ids, t_after, t_after + store::idempotency_window_ms);
        REQUIRE(n);
        CHECK(*n == 2);
    }(), 10s);
    CHECK_FALSE(s.get(done.id));
    CHECK_FALSE(s.get(failed.id));
    CHECK(s.get(waiting.id));  // never swept while it waits
    CHECK_FALSE(s.idempotent_jobs("old-key", 0));  // keys past the window went too
}
