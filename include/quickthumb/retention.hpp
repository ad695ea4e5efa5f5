#pragma once
// The retention sweep: finished jobs (succeeded, failed, cancelled) last changed longer ago than
// --retention are deleted with their files, and idempotency keys past their window are dropped.
// Runs on the blocking pool at start-up and then periodically; 0 retention keeps everything.
#include "quickthumb/jobs_service.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>

namespace quickthumb {

class retention_sweeper {
public:
    retention_sweeper(boost::asio::thread_pool& blocking, jobs_service& jobs, std::chrono::milliseconds retention);

    void start();
    void stop();  // thread-safe; the loop ends at its next wait

    // One pass at time `now` (ms since the epoch): files first, then rows, so a crash in between
    // leaves a row whose files are gone (swept again next time), never files no row points to.
    // Returns how many jobs were deleted.
    boost::asio::awaitable<int> sweep_once(std::int64_t now);

    // How often to sweep: a tenth of the retention, between 1 s and 1 h.
    static std::chrono::milliseconds interval_for(std::chrono::milliseconds retention) noexcept;

private:
    boost::asio::awaitable<void> loop();

    jobs_service& jobs_;
    std::chrono::milliseconds retention_;
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
    boost::asio::steady_timer timer_;
    bool stopped_ = false;  // strand only
};

}  // namespace quickthumb
