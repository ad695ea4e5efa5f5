// The worker pool in process, on the real job store, blob store and image engine, wired as
// src/app/app.cpp wires them: what each outcome leaves in the store and in the blob store, and
// what the workers tell the subscribers. The binary's own job life (a broken disk, timeouts,
// shutdown, DELETE of a running job) is tests/test_worker.cpp.
#include "quickthumb/job_queue.hpp"
#include "quickthumb/worker_pool.hpp"
#include "quickthumb/job_store.hpp"
#include "support/stores.hpp"
#include "support/catch_result.hpp"
#include "support/eventually.hpp"
#include "support/image_files.hpp"
#include "support/jobs.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <unistd.h>

using namespace quickthumb;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// The service's pieces on a fresh data directory. io and the pools come before the stores (the
// store's writer posts to io; the pools are joined before anything they run is destroyed).
struct fixture {
    qt_test::temp_dir dir;
    asio::io_context io;            // the test's own writes (run_for)
    asio::thread_pool blocking{2};  // the feeder, the subscribers
    asio::thread_pool work{2};      // the workers
    std::unique_ptr<blob_store> files_owner = qt_test::open_blobs(dir.path());
    blob_store& files = *files_owner;
    std::unique_ptr<job_store> db_owner = qt_test::open_store(dir.path() / "quickthumb.db");
    job_store& db = *db_owner;
    jobs_service jobs{blocking, db, files};
    job_queue queue{blocking, db, 4};
    std::unique_ptr<memory_budget> budget;  // outlives the workers
    worker_pool workers;
    std::atomic<bool> stopped{false};
    bool started = false, joined = false;

    explicit fixture(worker_options opts = {}, std::uint64_t budget_bytes = 0)
        : budget(budget_bytes ? std::make_unique<memory_budget>(budget_bytes) : nullptr),
          workers(work, queue, jobs, files, with_budget(opts, budget.get())) {
        // As the app does: the workers first, then the queue's feeder. A test adds its own after.
        jobs.subscribe([this](const job_change& c) { workers.on_change(c); });
        jobs.subscribe([this](const job_change& c) { queue.on_change(c); });
    }
    static worker_options with_budget(worker_options o, memory_budget* b) {
        o.budget = b;
        return o;
    }
    void start() {
        started = true;
        workers.start([this] { stopped = true; });
        queue.start();
    }
    // The service's shutdown: the channel closes, each worker finishes its job and exits. After
    // this the blob store cannot be used (its pool is joined); the job store still reads.
    void stop() {
        queue.close();
        qt_test::eventually([&] { return stopped.load(); }, 60s, "every worker stopped");
        join();
    }
    void join() {
        if (joined) return;
        joined = true;
        work.join();
        blocking.join();
    }
    ~fixture() {
        if (started && !joined) {  // a failed REQUIRE left it running: stop without throwing
            queue.close();
            workers.abort_all();
            for (int i = 0; i < 6000 && !stopped; ++i) std::this_thread::sleep_for(10ms);
        }
        join();
    }
};

using recorder = qt_test::heard;

std::string state_of(const job& j) { return std::string(to_string(j.state)); }
std::string code_of(const job& j) { return j.last_error ? std::string(errc_name(j.last_error->code)) : "none"; }
std::string text(const job& j) { return boost::json::serialize(to_json(j)); }

// "previous->now" for each change, " (progress)" for one never stored.
std::vector<std::string> transitions(const std::vector<job_change>& cs) {
    std::vector<std::string> out;
    for (const auto& c : cs)
        out.push_back((c.previous ? std::string(to_string(*c.previous)) : "new") + "->" +
                      std::string(to_string(c.now.state)) + (c.stored ? "" : " (progress)"));
    return out;
}

job job_for(const qt_test::bytes& data, int max_attempts = 3) {
    job j = qt_test::make_job("upload");
    j.source.bytes = static_cast<std::int64_t>(data.size());
    j.max_attempts = max_attempts;
    return j;
}

// What the upload handler does: the bytes stored under the job's id (none when nullopt), then the
// job accepted.
asio::awaitable<void> submit(fixture& f, job j, std::optional<qt_test::bytes> data) {
    if (data) {
        auto up = co_await f.files.begin_upload(j.id);
        REQUIRE(up);
        {
            auto r = co_await (*up)->append(std::span<const std::uint8_t>(*data));
            REQUIRE(r);
        }
        std::vector<blob_store::upload*> uploads(1, up->get());
        {
            auto r = co_await f.files.commit_uploads(uploads);
            REQUIRE(r);
        }
    }
    std::vector<job> one(1, j);
    auto accepted = co_await f.jobs.accept(one, std::nullopt);
    REQUIRE(accepted);
    REQUIRE(accepted->jobs.size() == 1);
}

template <class T>
asio::awaitable<void> store_into(asio::awaitable<T> op, std::optional<T>& out) {
    auto r = co_await std::move(op);
    out.emplace(std::move(r));
}

// A write through the service, on the fixture's context (which outlives the store).
template <class T>
T write_now(fixture& f, asio::awaitable<T> op) {
    std::optional<T> out;
    qt_test::run_for(f.io, store_into(std::move(op), out), 20s);
    REQUIRE(out);
    return std::move(*out);
}

job wait_final(fixture& f, const std::string& id) {
    std::optional<job> seen;
    qt_test::eventually([&] {
        seen = qt_test::read_now(f.db.get(id));
        return seen && is_final(seen->state);
    }, 60s, "the job reaches a final state");
    return *seen;
}

// Where a w x h source lands in a box with fit=contain and no enlarging: aspect ratio kept.
std::pair<int, int> fit_inside(int w, int h, int box_w, int box_h) {
    const double f = std::min({1.0, double(box_w) / w, double(box_h) / h});
    return {std::max(1, int(std::lround(w * f))), std::max(1, int(std::lround(h * f)))};
}

// A thumbnail's bytes as the server would stream them; nullopt when there is none by that name.
std::optional<qt_test::bytes> read_thumb(blob_store& files, const std::string& id, const std::string& name) {
    auto served = qt_test::read_now(files.open_thumb(id, name));
    if (!served) return std::nullopt;
    qt_test::bytes out(static_cast<std::size_t>(served->size()));
    const int fd = served->release();
    std::size_t got = 0;
    while (got < out.size()) {
        const ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

// A succeeded job: its source as read, every size as its box asks, listed and stored whole.
void check_succeeded(fixture& f, const job& asked, int src_w, int src_h, const std::string& src_format,
                     const std::string& ext, image::format out_format) {
    const job done = wait_final(f, asked.id);
    INFO("job " << asked.id << " (" << src_format << ")");
    REQUIRE(state_of(done) == "succeeded");
    CHECK(code_of(done) == "none");
    CHECK(done.attempts == 1);
    CHECK(done.progress == 100);
    CHECK(done.source.format == src_format);
    CHECK(done.source.width == src_w);
    CHECK(done.source.height == src_h);
    REQUIRE(done.outputs.size() == asked.params.sizes.size());
    for (std::size_t i = 0; i < done.outputs.size(); ++i) {
        const job_output& o = done.outputs[i];
        const auto [w, h] = fit_inside(src_w, src_h, asked.params.sizes[i].width, asked.params.sizes[i].height);
        INFO("output " << i << ": " << o.name);
        CHECK(o.width == w);
        CHECK(o.height == h);
        CHECK(o.name == "thumb_" + std::to_string(w) + "x" + std::to_string(h) + "." + ext);
        const auto stored = read_thumb(f.files, done.id, o.name);
        REQUIRE(stored);
        CHECK(static_cast<std::int64_t>(stored->size()) == o.bytes);
        const auto header = image::read_header(*stored);
        REQUIRE(header);
        CHECK(header->fmt == out_format);
        CHECK(header->width == w);
        CHECK(header->height == h);
    }
}

}  // namespace

TEST_CASE("worker pool: real JPEG and PNG uploads get every size, stored and listed - the upload goes unless kept",
          "[worker][store]") {
    const qt_test::bytes jpeg = qt_test::jpeg_file(qt_test::photo_like(640, 480, 3));
    const qt_test::bytes png = qt_test::png_file(qt_test::photo_like(300, 400, 3));
    for (const bool keep : {false, true}) {
        INFO("keep_uploads=" << keep);
        fixture f(worker_options{.keep_uploads = keep});
        job a = job_for(jpeg), b = job_for(png);
        a.params.sizes = {box{200, 200}, box{100, 50}};  // 200x150 and 67x50
        b.params.sizes = {box{256, 256}, box{64, 64}};   // 192x256 and 48x64
        b.params.format = output_format::png;
        qt_test::run_for(f.io, submit(f, a, jpeg), 20s);
        qt_test::run_for(f.io, submit(f, b, png), 20s);
        f.start();
        check_succeeded(f, a, 640, 480, "jpeg", "jpg", image::format::jpeg);
        check_succeeded(f, b, 300, 400, "png", "png", image::format::png);
        // The upload is removed after the success is recorded, before the worker is free again.
        qt_test::eventually([&] { return f.workers.busy() == 0; }, 60s, "the worker is idle");
        CHECK(qt_test::read_now(f.files.has_upload(a.id)) == keep);
        CHECK(qt_test::read_now(f.files.has_upload(b.id)) == keep);
        f.stop();
    }
}

TEST_CASE("worker pool: a broken image fails at once, permanently, and leaves no thumbnail", "[worker][store]") {
    const std::string whole = qt_test::synthetic_jpeg(300, 200);
    const qt_test::bytes truncated(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 3));
    // A JPEG's magic, then bytes with no 0xFF in them: no marker after SOI, so no image in it.
    qt_test::bytes garbage{0xFF, 0xD8, 0xFF, 0x00};
    std::mt19937 rng(7);
    for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<std::uint8_t>(rng() % 255));
    fixture f;
    const job t = job_for(truncated), g = job_for(garbage);  // 3 attempts each: only a transient failure retries
    qt_test::run_for(f.io, submit(f, t, truncated), 20s);
    qt_test::run_for(f.io, submit(f, g, garbage), 20s);
    f.start();
    for (const job* j : {&t, &g}) {
        const job done = wait_final(f, j->id);
        INFO((j == &t ? "truncated" : "garbage after the magic") << ": " << (done.last_error ? done.last_error->message : ""));
        if (j == &t) {  // its header was whole: the failed job still shows what it was
            CHECK(done.source.format == "jpeg");
            CHECK(done.source.width == 300);
            CHECK(done.source.height == 200);
        }
        CHECK(state_of(done) == "failed");
        CHECK(code_of(done) == "corrupt_image");
        REQUIRE(done.last_error);
        CHECK_FALSE(is_transient(done.last_error->code));
        CHECK(done.attempts == 1);
        CHECK(done.outputs.empty());
        CHECK_FALSE(read_thumb(f.files, j->id, "thumb_256x171.jpg"));
        CHECK(qt_test::read_now(f.files.has_upload(j->id)));  // kept: a retry by hand can run
    }
    f.stop();
}

TEST_CASE("worker pool: a missing upload is an I/O error, retried later while attempts are left", "[worker][store]") {
    recorder heard;  // before the fixture: it is called until the pools are joined
    fixture f;
    f.jobs.subscribe(std::ref(heard));
    const job once = job_for({}, 1), twice = job_for({}, 2);
    qt_test::run_for(f.io, submit(f, once, std::nullopt), 20s);
    qt_test::run_for(f.io, submit(f, twice, std::nullopt), 20s);
    f.start();
    const job a = wait_final(f, once.id), b = wait_final(f, twice.id);
    CHECK(state_of(a) == "failed");
    CHECK(code_of(a) == "io_error");
    CHECK(a.attempts == 1);
    CHECK(state_of(b) == "failed");
    CHECK(code_of(b) == "io_error");
    CHECK(b.attempts == 2);
    qt_test::eventually([&] { return heard.of(once.id).size() >= 3 && heard.of(twice.id).size() >= 5; }, 30s,
                        "every change was told");
    f.stop();  // nothing more can be told after this

    const std::vector<std::string> no_retry{"new->queued", "queued->processing", "processing->failed"};
    CHECK(transitions(heard.of(once.id)) == no_retry);
    const std::vector<std::string> one_retry{"new->queued", "queued->processing", "processing->queued",
                                             "queued->processing", "processing->failed"};
    const auto bs = heard.of(twice.id);
    REQUIRE(transitions(bs) == one_retry);
    // The first attempt: queued again with its error, not counted back, due after a backoff.
    const job& retried = bs[2].now;
    CHECK(code_of(retried) == "io_error");
    CHECK(retried.attempts == 1);
    CHECK(bs[2].attempt_seconds.has_value());
    CHECK(retried.run_after >= bs[1].now.updated_at + retry_base_ms / 2);
    CHECK(retried.run_after <= retried.updated_at + retry_base_ms);
    // The second starts only once it is due, and is the last.
    CHECK(bs[3].now.attempts == 2);
    CHECK(bs[3].now.updated_at >= retried.run_after);
    CHECK(bs[4].now.attempts == 2);
    CHECK(code_of(bs[4].now) == "io_error");
}

TEST_CASE("worker pool: a job needing more than the whole memory budget fails as too_large_for_memory",
          "[worker][store]") {
    const qt_test::bytes jpeg = qt_test::jpeg_file(qt_test::photo_like(640, 480, 3));
    fixture f(worker_options{}, 1024);  // far less than even the upload's own bytes
    const job j = job_for(jpeg);
    qt_test::run_for(f.io, submit(f, j, jpeg), 20s);
    f.start();
    const job done = wait_final(f, j.id);
    CHECK(state_of(done) == "failed");
    CHECK(code_of(done) == "too_large_for_memory");
    CHECK(done.attempts == 1);  // permanent: never retried
    REQUIRE(done.last_error);
    CHECK_THAT(done.last_error->message, Catch::Contains("640x480 JPEG") && Catch::Contains("memory budget"));
    CHECK(done.source.width == 640);
    CHECK(done.source.height == 480);
    CHECK(done.outputs.empty());
    CHECK_FALSE(read_thumb(f.files, j.id, "thumb_256x192.jpg"));
    const auto mem = f.budget->snapshot();
    CHECK(mem.reserved == 0);
    CHECK(mem.waited == 0);  // refused, never queued for memory
    f.stop();
}

TEST_CASE("worker pool: a job waiting for memory is cancelled without waiting its turn", "[worker][store]") {
    const qt_test::bytes jpeg = qt_test::jpeg_file(qt_test::photo_like(640, 480, 3));
    fixture f(worker_options{}, 1ull << 30);
    // The test holds the whole budget: the job fits, but must wait.
    memory_budget::reservation held = f.budget->reserve(f.budget->total());
    const job j = job_for(jpeg), next = job_for(jpeg);
    qt_test::run_for(f.io, submit(f, j, jpeg), 20s);
    f.start();
    qt_test::eventually([&] { return f.budget->snapshot().waiting == 1; }, 60s, "the job waits for memory");
    CHECK(state_of(*qt_test::read_now(f.db.get(j.id))) == "processing");
    CHECK(f.workers.busy() == 1);

    auto cancelled = write_now(f, f.jobs.cancel(j.id));
    REQUIRE(cancelled);
    CHECK(cancelled->state == job_state::cancelled);
    // The wait ends at once, with the memory still held: the worker lets the job go.
    qt_test::eventually([&] { return f.workers.busy() == 0; }, 30s, "the worker is free");
    const auto mem = f.budget->snapshot();
    CHECK(mem.waiting == 0);
    CHECK(mem.reserved == f.budget->total());
    const job gone = *qt_test::read_now(f.db.get(j.id));
    CHECK(state_of(gone) == "cancelled");
    CHECK(code_of(gone) == "cancelled");
    CHECK(gone.attempts == 1);
    CHECK(gone.outputs.empty());
    CHECK_FALSE(read_thumb(f.files, j.id, "thumb_256x192.jpg"));
    CHECK(qt_test::read_now(f.files.has_upload(j.id)));  // kept for a retry

    // The worker is not stuck: once the memory is back, the next job runs and gives it back.
    held.release();
    CHECK(f.budget->snapshot().reserved == 0);
    qt_test::run_for(f.io, submit(f, next, jpeg), 20s);
    const job done = wait_final(f, next.id);
    CHECK(state_of(done) == "succeeded");
    CHECK(state_of(*qt_test::read_now(f.db.get(j.id))) == "cancelled");  // not run after all
    const auto after = f.budget->snapshot();
    CHECK(after.reserved == 0);
    CHECK(after.waited == 1);  // only the cancelled one ever waited
    f.stop();
}

TEST_CASE("worker pool: every change of a job is told in order, the last one as stored", "[worker][store]") {
    const qt_test::bytes jpeg = qt_test::jpeg_file(qt_test::photo_like(640, 480, 3));
    recorder heard;  // before the fixture: it is called until the pools are joined
    fixture f;
    f.jobs.subscribe(std::ref(heard));
    const job j = job_for(jpeg);
    qt_test::run_for(f.io, submit(f, j, jpeg), 20s);
    f.start();
    const job done = wait_final(f, j.id);
    REQUIRE(state_of(done) == "succeeded");
    qt_test::eventually([&] {
        const auto cs = heard.of(j.id);
        return !cs.empty() && cs.back().now.state == job_state::succeeded;
    }, 30s, "the success was told");
    qt_test::eventually([&] { return f.workers.busy() == 0; }, 60s, "the worker is idle");
    f.stop();  // nothing more can be told after this

    const auto cs = heard.of(j.id);
    const auto t = transitions(cs);
    INFO("heard: " << Catch::Detail::stringify(t));
    REQUIRE(t.size() >= 4);
    CHECK(t.front() == "new->queued");
    CHECK_FALSE(cs.front().previous.has_value());
    CHECK(t[1] == "queued->processing");
    CHECK(cs[1].stored);
    CHECK(cs[1].now.attempts == 1);
    CHECK_FALSE(cs[1].attempt_seconds);
    // Progress between, told but never stored, rising; the decode's end is 60 % (one output: the
    // steps after it reach 100, which is told as the success).
    std::vector<int> progress;
    for (std::size_t i = 2; i + 1 < cs.size(); ++i) {
        CHECK(t[i] == "processing->processing (progress)");
        CHECK_FALSE(cs[i].stored);
        progress.push_back(cs[i].now.progress);
    }
    REQUIRE_FALSE(progress.empty());
    CHECK(std::is_sorted(progress.begin(), progress.end()));
    CHECK(std::adjacent_find(progress.begin(), progress.end()) == progress.end());  // no step told twice
    CHECK(progress.front() >= 20);
    CHECK(progress.back() == 60);
    // The success, once, last.
    CHECK(t.back() == "processing->succeeded");
    CHECK(cs.back().stored);
    REQUIRE(cs.back().attempt_seconds);
    CHECK(*cs.back().attempt_seconds >= 0.0);
    CHECK(cs.back().now.outputs.size() == 1);
    CHECK(cs.back().now.progress == 100);
    // What was told is the row as the store has it (the store still reads once the pools are joined).
    CHECK(text(cs.back().now) == text(*qt_test::read_now(f.db.get(j.id))));
}
