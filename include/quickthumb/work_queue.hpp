#pragma once
// What the workers take jobs from: a bounded channel of job ids, fed by one of two feeders. On
// the single-node store the feeder scans the store (job_queue); on the Redis store it reads the
// shared work stream as this instance's consumer (redis_work_feed). Workers see only this.
#include "quickthumb/job.hpp"

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/system/error_code.hpp>

#include <string>

namespace quickthumb {

class work_queue {
public:
    using channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;

    virtual ~work_queue() = default;
    // Starts the feeder.
    virtual void start() = 0;
    // A job change (a subscriber of the jobs service). Thread-safe, never blocks.
    virtual void on_change(const job_change& c) = 0;
    // A worker tried to start a job it received: `started` says whether it now runs it (false:
    // cancelled meanwhile, taken by another instance, or the store failed). Thread-safe.
    virtual void on_taken(const std::string& id, bool started) = 0;
    virtual channel& jobs() noexcept = 0;
    // Stops the feeder and closes the channel. Thread-safe.
    virtual void close() = 0;
};

}  // namespace quickthumb
