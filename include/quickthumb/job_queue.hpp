#pragma once
// The bounded hand-off between the store and the workers. The channel holds at most `capacity`
// job ids; everything else waits in SQLite. A feeder coroutine reads the queued jobs that are due
// (run_after <= now) oldest first and sends them into the channel, suspending while it is full, so
// memory never grows with the backlog. A job retried later, or re-queued by hand, is found by the
// next scan; ids handed over but not yet started are remembered (at most the channel's capacity
// plus one per worker) so a scan never sends one twice.
#include "quickthumb/job_store.hpp"
#include "quickthumb/work_queue.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <unordered_set>

namespace quickthumb {

class job_queue final : public work_queue {
public:

    // `blocking` runs the feeder (it reads SQLite); the channel holds `capacity` ids.
    job_queue(boost::asio::thread_pool& blocking, job_store& db, std::size_t capacity);

    // Starts the feeder.
    void start() override;
    // A job change (the jobs service's subscriber): one that became queued (new, retried,
    // released) wakes the feeder. Thread-safe.
    void on_change(const job_change& c) override;
    // Wakes the feeder to scan again. Thread-safe.
    void wake();
    // A worker tried to start a job it received (started or not: cancelled meanwhile, or the
    // store failed): it is no longer handed out, so a later scan may send it again. Thread-safe.
    void on_taken(const std::string& id, bool started = false) override;

    channel& jobs() noexcept override { return channel_; }
    // Stops the feeder and closes the channel; workers see the close after draining nothing more.
    void close() override;

private:
    boost::asio::awaitable<void> feed();

    job_store& db_;
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
    channel channel_;
    boost::asio::steady_timer wake_;
    std::size_t capacity_;
    std::unordered_set<std::string> handed_;  // sent, not yet started (strand only)
    // Taken while a scan's read was in flight: that read may predate their start and list them
    // as queued still, so it must not hand them out again (strand only).
    std::unordered_set<std::string> taken_during_scan_;
    bool scanning_ = false;
    bool pending_ = false;       // a notify arrived since the last scan (strand only)
    bool closed_ = false;        // strand only
};

}  // namespace quickthumb
