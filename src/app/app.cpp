#include "quickthumb/app.hpp"

#include "quickthumb/data_dir_lock.hpp"
#include "quickthumb/event_bus.hpp"
#include "quickthumb/http_server.hpp"
#include "quickthumb/job_queue.hpp"
#include "quickthumb/jobs_service.hpp"
#include "quickthumb/log.hpp"
#include "quickthumb/memory_budget.hpp"
#include "quickthumb/memory_limit.hpp"
#include "quickthumb/metrics.hpp"
#include "quickthumb/redis_event_feed.hpp"
#include "quickthumb/redis_mirror.hpp"
#include "quickthumb/redis_store.hpp"
#include "quickthumb/redis_work_feed.hpp"
#include "quickthumb/retention.hpp"
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job_store.hpp"
#include "quickthumb/offload.hpp"
#include "quickthumb/worker_pool.hpp"

#include "http/access.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <boost/json/serialize.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sys/resource.h>

namespace quickthumb {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {
// Connections and files share the open-file limit: the soft limit is raised to the hard one.
// Returns the limit now in force.
std::size_t raise_open_file_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;  // the kernel may refuse "unlimited"
    }
    return rl.rlim_cur == RLIM_INFINITY ? std::size_t(1) << 20 : static_cast<std::size_t>(rl.rlim_cur);
}

// The data directory's files, or the bucket --storage names (checked now: a wrong key, a missing
// bucket or an endpoint that does not answer ends the start with the reason).
std::unique_ptr<blob_store> open_blobs(const serve_config& cfg, metrics& meter) {
    if (cfg.storage.empty()) return open_file_blob_store(cfg.data_dir);
    std::filesystem::create_directories(cfg.data_dir);  // the job store stays there
    s3_store_options o;
    o.bucket_url = cfg.storage;
    o.path_style = cfg.s3_path_style;
    o.part_size = static_cast<std::size_t>(cfg.s3_part_size);
    o.max_object = static_cast<std::size_t>(cfg.max_upload) + 1024;
    o.timeout = cfg.s3_timeout;
    // Several instances share a bucket: a multipart upload younger than an hour may be another's.
    o.partial_age = cfg.redis.empty() ? std::chrono::seconds(0) : std::chrono::seconds(3600);
    o.observe = [&meter](std::string_view op, bool ok, double seconds) { meter.observe_storage_request(op, ok, seconds); };
    auto opened = open_s3_blob_store(o, [](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (!v) return std::nullopt;
        return std::string(v);
    });
    if (!opened) throw config_error(opened.error().message);
    log::info("storage", "bucket_url=" + cfg.storage);
    return std::move(*opened);
}

// SQLite in the data directory, or the Redis every instance shares (--store redis; checked now:
// a Redis that does not answer ends the start with the reason).
std::unique_ptr<job_store> open_jobs(const serve_config& cfg, const data_dir_lock& lock, redis_job_store*& shared) {
    shared = nullptr;
    if (!cfg.redis_store) return open_sqlite_store(cfg.data_dir / "quickthumb.db");
    auto url = parse_redis_url(cfg.redis);
    if (!url) throw config_error(url.error().message);
    redis_store_options o;
    o.consumer = lock.instance_name();
    auto s = open_redis_store(*url, o);
    shared = s.get();
    log::info("job store", "store=redis redis=" + to_display_string(*url) + " instance=" + o.consumer);
    return s;
}
}  // namespace

int run_service(const serve_config& cfg) {
    log::set_level(cfg.level);
    tune_allocator();
    // Tokens and CORS first: a bad token file is fatal before anything is opened.
    const http::access_policy access = http::make_access_policy(cfg);
    // Before anything in the data directory is read or removed: a second process there is refused.
    const data_dir_lock lock(cfg.data_dir);
    // Declared before the store so that they outlive it: the store's writer thread may still
    // complete a write (posting to these executors) while it drains in its destructor.
    asio::io_context io(1);
    asio::thread_pool blocking(2);  // the feeder, the job-change subscribers, the retention sweep
    let_threads_block(blocking, 2);  // their store reads and file removals run in place
    const auto work_threads = static_cast<std::size_t>(std::max(1, cfg.workers));
    asio::thread_pool work(work_threads);  // image work: its file reads and writes run there too
    let_threads_block(work, work_threads);
    metrics meter;  // before the blob store, whose S3 client counts its requests into it
    auto files_owner = open_blobs(cfg, meter);
    blob_store& files = *files_owner;
    files.clean_partial();
    redis_job_store* shared = nullptr;  // the Redis store, when jobs are shared with other instances
    auto db_owner = open_jobs(cfg, lock, shared);
    job_store& db = *db_owner;
    jobs_service jobs(blocking, db, files);

    // Start-up recovery: whatever a previous run left in flight is queued again (the attempt
    // counted), or fails as interrupted once it has used all its attempts. Run to its end before
    // anything else is on the network context.
    asio::co_spawn(io, jobs.recover_interrupted(), [](std::exception_ptr ep, const job_store::recovery&) {
        if (ep) std::rethrow_exception(ep);  // out of io.run(): fatal, as a failed open is
    });
    io.run();
    io.restart();

    // Everyone who hears about a job's changes subscribes to the jobs service, in this order:
    // the workers (a DELETE stops a running job), the queue's feeder, the live events, metrics,
    // and the optional Redis mirror (--redis), which runs on the network thread.
    std::unique_ptr<work_queue> queue_owner;
    if (shared)
        queue_owner = std::make_unique<redis_work_feed>(
            blocking, *shared,
            redis_work_options{cfg.queue_capacity, static_cast<std::size_t>(std::max(cfg.workers, 0)), cfg.redis_claim_idle});
    else
        queue_owner = std::make_unique<job_queue>(blocking, db, cfg.queue_capacity);
    work_queue& queue = *queue_owner;
    // Jobs reserve their estimated peak memory from this before they decode.
    const memory_limit limit = detect_memory_limit();
    memory_budget budget(resolve_memory_budget(cfg.max_memory, limit));
    log::info("memory budget", "bytes=" + std::to_string(budget.total()) + " limit_bytes=" + std::to_string(limit.bytes) +
                                   " limit_from=\"" + limit.source + "\"");
    worker_pool workers(work, queue, jobs, files,
                        worker_options{cfg.workers, cfg.max_pixels, cfg.job_timeout, cfg.keep_uploads, &budget});
    // On the Redis store a change is heard twice: from this instance's store when it commits it,
    // and from the shared events stream, with every other instance's (from_stream). The workers and
    // the feeder hear each change once; metrics count this instance's work; the live events
    // follow the stream, so every instance shows every job, numbered alike.
    auto once = [](const job_change& c) { return !c.from_stream || c.remote; };
    jobs.subscribe([&workers, once](const job_change& c) {
        if (once(c)) workers.on_change(c);
    });
    jobs.subscribe([&queue](const job_change& c) { queue.on_change(c); });
    // Live events: every change of a job, serialized once, for GET /api/v1/events. Ids start from
    // the start time so that a browser's Last-Event-ID from an earlier run reads as "missed"; on
    // the Redis store they are the shared stream's, and the ring starts with its latest events.
    std::string events_after = "0-0";
    std::vector<stored_event> recent;
    if (shared) {
        asio::co_spawn(io, shared->latest_events(4096), [&](std::exception_ptr ep, result<std::vector<stored_event>> r) {
            if (ep) std::rethrow_exception(ep);
            if (!r) throw config_error("cannot read the events stream: " + r.error().message);
            recent = std::move(*r);
        });
        io.run();
        io.restart();
        if (!recent.empty()) events_after = recent.back().id;
    }
    event_bus events(4096,
                     shared ? (recent.empty() ? 1 : event_number(recent.front().id))
                            : static_cast<std::uint64_t>(now_ms()) << 10,
                     shared != nullptr);
    const std::string url_base = cfg.public_base_url;
    for (const auto& e : recent)
        events.publish_at(event_number(e.id), e.change.now.id, boost::json::serialize(to_json(e.change.now, url_base)));
    recent.clear();
    const bool stream_events = shared != nullptr;
    jobs.subscribe([&events, &url_base, stream_events](const job_change& c) {
        if (c.from_stream)
            events.publish_at(c.event, c.now.id, boost::json::serialize(to_json(c.now, url_base)));
        else if (!stream_events)
            events.publish(c.now.id, boost::json::serialize(to_json(c.now, url_base)));
    });
    jobs.subscribe([&meter](const job_change& c) {
        if (!c.from_stream) meter.on_change(c);
    });
    std::unique_ptr<redis_event_feed> event_feed;
    if (shared) event_feed = std::make_unique<redis_event_feed>(io.get_executor(), *shared, jobs, events_after);
    std::unique_ptr<redis_mirror> mirror;
    if (!cfg.redis.empty() && !shared) {
        auto url = parse_redis_url(cfg.redis);
        if (!url) throw config_error(url.error().message);
        redis_mirror_options mirror_opts;
        mirror_opts.claim_idle = cfg.redis_claim_idle;
        mirror = std::make_unique<redis_mirror>(io, db, *url, mirror_opts);
        jobs.subscribe([m = mirror.get()](const job_change& c) { m->on_change(c); });
    }
    retention_sweeper retention(blocking, jobs, cfg.retention);
    http::services svc{cfg, jobs, files};
    if (mirror) svc.readiness.push_back([&mirror] { return mirror->readiness(); });
    if (shared)
        svc.readiness.push_back([shared] {
            return boost::json::object{{"job_store", "redis"}, {"redis", shared->state()},
                                       {"instance", shared->options().consumer}};
        });
    // The memory budget is reported, never a reason to be unready: jobs waiting for memory wait
    // in the store like any other, and uploads are still taken.
    svc.readiness.push_back([&budget] {
        const auto s = budget.snapshot();
        return boost::json::object{{"memory", boost::json::object{{"budget_bytes", s.total},
                                                                   {"reserved_bytes", s.reserved},
                                                                   {"waiting_jobs", s.waiting}}}};
    });
    svc.events = &events;
    // The gauges are read when scraped.
    meter.set_sources(metrics_sources{[&jobs] { return jobs.waiting(); },
                                      [&workers] { return workers.busy(); }, [&budget] {
                                          const auto s = budget.snapshot();
                                          return memory_gauges{s.total, s.reserved, s.waiting, s.waited};
                                      }});
    svc.metrics = &meter;
    svc.access = &access;
    http::server server(io, svc);
    const auto open_files = raise_open_file_limit();
    if (const auto cap = server.fit_connections_to(open_files); cap < cfg.max_connections)
        log::warn("--max-connections lowered to fit the open-file limit",
                  "max_connections=" + std::to_string(cap) + " open_file_limit=" + std::to_string(open_files));

    auto ep = server.listen(cfg.bind, cfg.port);
    // Caught from here on (asio queues a signal until the wait below): a SIGTERM right after the
    // "listening" line must be a clean shutdown, not the default action.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    // Workers stopped: wake the shutdown sequence on the network thread.
    asio::steady_timer workers_done(io, asio::steady_timer::time_point::max());
    // Expiring it (rather than cancelling) also completes a wait that starts later: with
    // --workers 0 the workers are "done" before any shutdown begins.
    workers.start([&] { asio::post(io, [&] { workers_done.expires_at(asio::steady_timer::time_point::min()); }); });
    queue.start();
    retention.start();
    if (mirror) mirror->start();
    if (event_feed) event_feed->start();
    server.start();
    std::printf("quickthumb listening on http://%s:%u\n", ep.address().to_string().c_str(), ep.port());
    std::fflush(stdout);
    if (access.api.empty())
        log::warn("no API token: the API is open to anyone who can reach the port",
                  "hint=\"set --api-token or --api-token-file\"");
    log::info("started", "workers=" + std::to_string(cfg.workers) + " queued=" + std::to_string(jobs.waiting()) +
                             " data=" + cfg.data_dir.string());

    // Two-phase shutdown: stop taking work; give running jobs and open requests a bounded grace
    // (an upload in its body finishes and gets its answer, idle connections close, event streams
    // are told to reconnect); then stop what is left.
    asio::steady_timer connections_done(io, asio::steady_timer::time_point::max());
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        log::info("shutting down", "signal=" + std::to_string(sig) + " grace_s=" + std::to_string(cfg.shutdown_grace_seconds));
        svc.accepting = false;
        server.stop_accepting();
        server.drain([&] { connections_done.expires_at(asio::steady_timer::time_point::min()); });
        queue.close();
        retention.stop();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                asio::steady_timer grace(io, std::chrono::seconds(cfg.shutdown_grace_seconds));
                auto r = co_await ((workers_done.async_wait(asio::as_tuple(asio::use_awaitable)) &&
                                    connections_done.async_wait(asio::as_tuple(asio::use_awaitable))) ||
                                   grace.async_wait(asio::as_tuple(asio::use_awaitable)));
                if (r.index() == 1) {
                    // Phase two: running jobs stop at their next safe point and go back to queued;
                    // connections still open are closed.
                    log::warn("grace period over; stopping running jobs, they stay queued for the next start");
                    workers.abort_all();
                    server.close_all();
                    asio::steady_timer last_call(io, std::chrono::seconds(5));
                    co_await (workers_done.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                              last_call.async_wait(asio::as_tuple(asio::use_awaitable)));
                }
                // Acknowledgements still in flight are redone from SQLite by the next start.
                if (mirror) mirror->stop();
                if (event_feed) event_feed->stop();
                io.stop();
            },
            asio::detached);
    });

    io.run();
    work.stop();
    work.join();
    blocking.stop();
    blocking.join();
    log::info("stopped");
    return 0;
}

}  // namespace quickthumb
