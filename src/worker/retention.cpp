#include "quickthumb/retention.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace quickthumb {
namespace asio = boost::asio;

namespace {
constexpr int sweep_batch = 500;
}

retention_sweeper::retention_sweeper(asio::thread_pool& blocking, jobs_service& jobs, std::chrono::milliseconds retention)
    : jobs_(jobs), retention_(retention), strand_(asio::make_strand(blocking.get_executor())), timer_(strand_) {}

std::chrono::milliseconds retention_sweeper::interval_for(std::chrono::milliseconds retention) noexcept {
    using namespace std::chrono_literals;
    return std::clamp<std::chrono::milliseconds>(retention / 10, 1s, 1h);
}

void retention_sweeper::start() {
    if (retention_.count() <= 0) return;  // keep forever
    asio::co_spawn(strand_, loop(), log::on_exit("retention sweep stopped"));
}

void retention_sweeper::stop() {
    asio::post(strand_, [this] {
        stopped_ = true;
        timer_.cancel();
    });
}

asio::awaitable<int> retention_sweeper::sweep_once(std::int64_t now) {
    const std::int64_t cutoff = now - retention_.count();
    int total = 0;
    for (;;) {
        auto removed = co_await jobs_.expire(cutoff, now, sweep_batch);
        if (!removed) {
            log::warn("retention sweep failed", "reason=\"" + removed.error().message + "\"");
            break;
        }
        total += *removed;
        if (*removed < sweep_batch) break;
    }
    co_return total;
}

asio::awaitable<void> retention_sweeper::loop() {
    const auto every = interval_for(retention_);
    while (!stopped_) {
        try {
            if (int n = co_await sweep_once(now_ms()); n > 0)
                log::info("retention sweep", "deleted_jobs=" + std::to_string(n));
        } catch (const std::exception& e) {
            // The store is shutting down or the disk failed: try again next time.
            log::warn("retention sweep failed", std::string("error=\"") + e.what() + "\"");
        }
        timer_.expires_after(every);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace quickthumb
