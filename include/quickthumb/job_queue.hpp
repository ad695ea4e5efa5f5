#pragma once
// The bounded hand-off between the store and the workers. The channel holds at most `capacity`
// job ids; everything else waits in SQLite. A feeder coroutine reads the queued jobs that are due
// (run_after <= now) oldest first and sends them into the channel, suspending while it is full, so
// memory never grows with the backlog. A job retried later, or re-queued by hand, is found by the
// next scan; ids handed over but not yet started are remembered (at most the channel's capacity
// plus one per worker) so a scan never sends one twice.
#include "quickthumb/store.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <unordered_set>

namespace quickthumb {

class job_queue {
public:
    using channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;

    // `blocking` runs the feeder (it reads SQLite); the channel holds `capacity` ids.
    job_queue(boost::asio::thread_pool& blocking, store& db, std::size_t capacity);

    // Starts the feeder. `waiting` is the number of jobs queued in the store right now.
    void start(std::int64_t waiting);
    // Jobs became queued (new, retried, released): wake the feeder. Thread-safe.
    void notify(std::int64_t added);
    // A worker tried to start a job it received: `started` when it is now processing (it stops
    // counting as waiting), false when it was not queued any more (cancelled meanwhile). Thread-safe.
    void on_started(const std::string& id, bool started);
    // Queued jobs left the queue without being started (cancelled). Thread-safe.
    void on_removed(std::int64_t n) noexcept { waiting_.fetch_sub(n, std::memory_order_relaxed); }
    // Jobs waiting in the store or the channel (for 429 and metrics).
    std::int64_t waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }

    channel& jobs() noexcept { return channel_; }
    // Stops the feeder and closes the channel; workers see the close after draining nothing more.
    void close();

private:
    boost::asio::awaitable<void> feed();

    store& db_;
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
    channel channel_;
    boost::asio::steady_timer wake_;
    std::size_t capacity_;
    std::unordered_set<std::string> handed_;  // sent, not yet started (strand only)
    bool pending_ = false;       // a notify arrived since the last scan (strand only)
    bool closed_ = false;        // strand only
    std::atomic<std::int64_t> waiting_{0};
};

}  // namespace quickthumb
