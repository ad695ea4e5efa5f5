// The durable queue alone: N no-op jobs through the real store (SQLite WAL, group commit,
// synchronous=FULL: each completion after its batch's COMMIT is on disk) and the real job_queue
// channel, optionally with the Redis mirror hooked in as the service wires it. P producer
// coroutines each insert one job at a time and notify the queue (like BullMQ's MODE=single with
// 64 concurrent adders); C consumer coroutines take ids from the channel, start them through the
// jobs service, do nothing, and succeed them.
// Prints one JSON line: jobs/s enqueue -> succeeded, and p50/p99 of each job's latency from its
// insert call to its succeed being committed.
//
// Usage: quickthumb_bench_queue [--jobs N] [--producers P] [--consumers C] [--redis URL] [--dir D]
#include "quickthumb/jobs_service.hpp"
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job_queue.hpp"
#include "quickthumb/redis_mirror.hpp"
#include "quickthumb/job_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
using namespace quickthumb;
using clk = std::chrono::steady_clock;

namespace {

struct bench_state {
    std::vector<job> jobs;                                 // prepared before the clock starts
    std::unordered_map<std::string, std::size_t> index;    // id -> position (read-only while running)
    std::vector<clk::time_point> began;                    // insert called
    std::vector<double> latency_ms;                        // insert called -> succeed committed
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    std::atomic<std::size_t> errors{0};
    std::promise<void> all_done;
};

asio::awaitable<void> producer(bench_state& b, jobs_service& jobs) {
    for (;;) {
        const std::size_t i = b.next.fetch_add(1);
        if (i >= b.jobs.size()) co_return;
        b.began[i] = clk::now();
        std::vector<job> one;
        one.push_back(b.jobs[i]);
        auto r = co_await jobs.accept(std::move(one), std::nullopt);
        if (!r) ++b.errors;
    }
}

asio::awaitable<void> consumer(bench_state& b, jobs_service& jobs, job_queue& queue) {
    for (;;) {
        auto [ec, id] = co_await queue.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        auto started = co_await jobs.start(id);
        queue.on_taken(id);
        if (!started) {
            ++b.errors;
            continue;
        }
        auto r = co_await jobs.succeed(id, started->source, std::vector<job_output>{}, 0.0);
        if (!r) {
            ++b.errors;
            continue;
        }
        const auto end = clk::now();
        const std::size_t i = b.index.at(id);
        b.latency_ms[i] = std::chrono::duration<double, std::milli>(end - b.began[i]).count();
        if (b.done.fetch_add(1) + 1 == b.jobs.size()) b.all_done.set_value();
    }
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(k, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 20000;
    int producers = 64, consumers = 50;
    std::string redis, dir_arg;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--jobs") n = std::stoul(val());
        else if (a == "--producers") producers = std::stoi(val());
        else if (a == "--consumers") consumers = std::stoi(val());
        else if (a == "--redis") redis = val();
        else if (a == "--dir") dir_arg = val();
        else {
            std::fprintf(stderr, "usage: %s [--jobs N] [--producers P] [--consumers C] [--redis URL] [--dir D]\n", argv[0]);
            return 2;
        }
    }
    std::filesystem::path dir = dir_arg.empty()
                                    ? std::filesystem::temp_directory_path() /
                                          ("qt-queue-bench-" + std::to_string(::getpid()))
                                    : std::filesystem::path(dir_arg);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    bench_state b;
    b.jobs.resize(n);
    b.began.resize(n);
    b.latency_ms.assign(n, 0.0);
    const auto now = now_ms();
    for (std::size_t i = 0; i < n; ++i) {
        job& j = b.jobs[i];
        j.id = new_job_id();
        j.created_at = j.updated_at = now;
        j.source.filename = "noop.jpg";
        b.index.emplace(j.id, i);
    }

    int rc = 0;
    {
        // As the service: the network context (producers here, and the mirror), the blocking pool
        // (the feeder), the worker pool (consumers).
        asio::io_context io(1);
        asio::thread_pool blocking(2);
        asio::thread_pool work(2);
        auto files_owner = open_file_blob_store(dir);
        blob_store& files = *files_owner;
        auto db_owner = open_sqlite_store(dir / "quickthumb.db");
        job_store& db = *db_owner;
        jobs_service jobs(blocking, db, files);
        std::unique_ptr<redis_mirror> mirror;
        if (!redis.empty()) {
            auto url = parse_redis_url(redis);
            if (!url) {
                std::fprintf(stderr, "bad redis url: %s\n", url.error().message.c_str());
                return 2;
            }
            mirror = std::make_unique<redis_mirror>(io, db, *url);
            jobs.subscribe([m = mirror.get()](const job_change& c) { m->on_change(c); });
        }
        job_queue queue(blocking, db, 64);
        jobs.subscribe([&queue](const job_change& c) { queue.on_change(c); });
        queue.start();
        if (mirror) mirror->start();
        auto guard = asio::make_work_guard(io);
        std::thread net([&] { io.run(); });
        if (mirror) {
            // Let it connect and create its group before the clock starts.
            for (int k = 0; k < 100 && mirror->state() != "up"; ++k)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }

        auto finished = b.all_done.get_future();
        const auto t0 = clk::now();
        for (int c = 0; c < consumers; ++c) asio::co_spawn(work, consumer(b, jobs, queue), asio::detached);
        for (int p = 0; p < producers; ++p) asio::co_spawn(io, producer(b, jobs), asio::detached);
        if (n > 0) {
            if (finished.wait_for(std::chrono::seconds(300)) != std::future_status::ready) {
                std::fprintf(stderr, "timed out: %zu of %zu done, %zu errors\n", b.done.load(), n, b.errors.load());
                std::_Exit(1);
            }
        }
        const auto t1 = clk::now();
        const double secs = std::chrono::duration<double>(t1 - t0).count();
        const auto commits = db.commits();
        std::string mirror_state = mirror ? mirror->state() : "off";

        queue.close();
        if (mirror) mirror->stop();
        guard.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        io.stop();
        net.join();
        work.join();
        blocking.join();

        std::printf("{\"system\":\"quickthumb\",\"figure\":\"queue_jobs_per_s\",\"redis\":\"%s\",\"value\":%.0f,"
                    "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"jobs\":%zu,\"producers\":%d,\"consumers\":%d,"
                    "\"commits\":%llu,\"errors\":%zu,\"mirror\":\"%s\","
                    "\"sqlite\":\"WAL synchronous=FULL, group commit\"}\n",
                    redis.empty() ? "off" : "on", static_cast<double>(n) / secs, percentile(b.latency_ms, 0.50),
                    percentile(b.latency_ms, 0.99), n, producers, consumers,
                    static_cast<unsigned long long>(commits), b.errors.load(), mirror_state.c_str());
        std::fflush(stdout);
        rc = b.errors.load() == 0 ? 0 : 1;
    }
    std::filesystem::remove_all(dir);
    return rc;
}
