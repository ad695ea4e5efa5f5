#include "quickthumb/app.hpp"

#include "quickthumb/http_server.hpp"
#include "quickthumb/job_queue.hpp"
#include "quickthumb/log.hpp"
#include "quickthumb/storage.hpp"
#include "quickthumb/store.hpp"
#include "quickthumb/worker_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdio>

namespace quickthumb {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

int run_service(const serve_config& cfg) {
    log::set_level(cfg.level);
    storage files(cfg.data_dir);
    files.clean_temp();
    store db(files.db_path());

    // Start-up recovery: whatever a previous run left in flight is queued again.
    if (int n = db.recover_interrupted(); n > 0) log::info("recovered interrupted jobs", "count=" + std::to_string(n));
    const auto waiting = db.count(job_state::queued);

    asio::io_context io(1);
    asio::thread_pool blocking(2);                                      // SQLite reads, fsync, the feeder
    asio::thread_pool work(static_cast<std::size_t>(std::max(1, cfg.workers)));  // image work

    job_queue queue(blocking, db, cfg.queue_capacity);
    worker_pool workers(work, queue, db, files, worker_options{cfg.workers, cfg.max_pixels});
    http::services svc{cfg, db, files, queue, blocking};
    http::server server(io, svc);

    auto ep = server.listen(cfg.bind, cfg.port);
    // Workers stopped: wake the shutdown sequence on the network thread.
    asio::steady_timer workers_done(io, asio::steady_timer::time_point::max());
    workers.start([&] { asio::post(io, [&] { workers_done.cancel(); }); });
    queue.start(waiting);
    server.start();
    std::printf("quickthumb listening on http://%s:%u\n", ep.address().to_string().c_str(), ep.port());
    std::fflush(stdout);
    log::info("started", "workers=" + std::to_string(cfg.workers) + " queued=" + std::to_string(waiting) +
                             " data=" + cfg.data_dir.string());

    // Two-phase shutdown: stop taking work, give running jobs a bounded grace, then stop.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        log::info("shutting down", "signal=" + std::to_string(sig) + " grace_s=" + std::to_string(cfg.shutdown_grace_seconds));
        svc.accepting = false;
        server.stop_accepting();
        queue.close();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                asio::steady_timer grace(io, std::chrono::seconds(cfg.shutdown_grace_seconds));
                auto r = co_await (workers_done.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                                   grace.async_wait(asio::as_tuple(asio::use_awaitable)));
                if (r.index() == 1) log::warn("grace period over; unfinished jobs stay queued for the next start");
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
