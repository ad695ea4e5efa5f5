#pragma once
// The bounded hand-off between the store and the workers. The channel holds at most `capacity`
// job ids; everything else waits in SQLite. A feeder coroutine reads queued jobs in arrival order
// and sends them into the channel, suspending while it is full, so memory never grows with the
// backlog.
#include "quickthumb/store.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>

namespace quickthumb {

class job_queue {
public:
    using channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;

    // `blocking` runs the feeder (it reads SQLite); the channel holds `capacity` ids.
    job_queue(boost::asio::thread_pool& blocking, store& db, std::size_t capacity);

    // Starts the feeder. `waiting` is the number of jobs queued in the store right now.
    void start(std::int64_t waiting);
    // New jobs were committed: wake the feeder. Thread-safe.
    void notify(std::int64_t added);
    // A worker took a job off the queue. Thread-safe.
    void on_started() noexcept { waiting_.fetch_sub(1, std::memory_order_relaxed); }
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
    std::int64_t last_seq_ = 0;  // highest seq handed to the channel (strand only)
    bool pending_ = false;       // a notify arrived since the last scan (strand only)
    bool closed_ = false;        // strand only
    std::atomic<std::int64_t> waiting_{0};
};

}  // namespace quickthumb
