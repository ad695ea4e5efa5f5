#pragma once
// The work queue on the Redis store: this instance is one consumer of the shared work stream.
// Its feeder takes new entries (as many as it has room for: two per worker, none without workers),
// renews the lease of every entry it holds (in the channel or running) every third of the claim
// time, claims the entries of consumers that stopped renewing theirs (a dead instance: its jobs
// are put right by the store and run here), and moves delayed jobs to the stream when due. So a
// long job is never taken from a live worker, and a dead instance's jobs wait at most the claim
// time plus one pass.
//
// It runs on a strand of the blocking pool; every Redis call goes through the store, which never
// blocks a thread. A store failure (Redis down) is logged once and retried every second.
#include "quickthumb/redis_store.hpp"
#include "quickthumb/work_queue.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <unordered_map>

namespace quickthumb {

struct redis_work_options {
    std::size_t capacity = 64;  // ids in the channel
    std::size_t workers = 1;    // held beyond the channel: one running per worker
    std::chrono::milliseconds claim_idle{60'000};
    std::chrono::milliseconds poll{250};  // the longest an idle feeder waits before looking again
};

class redis_work_feed final : public work_queue {
public:
    redis_work_feed(boost::asio::thread_pool& blocking, redis_job_store& db, redis_work_options opts);

    void start() override;
    void on_change(const job_change& c) override;
    void on_taken(const std::string& id, bool started) override;
    channel& jobs() noexcept override { return channel_; }
    void close() override;

private:
    struct held {
        std::string entry;
        bool running = false;
    };
    boost::asio::awaitable<void> feed();
    boost::asio::awaitable<bool> hand_over(std::vector<work_entry> entries);
    void wake();

    redis_job_store& db_;
    redis_work_options opts_;
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
    channel channel_;
    boost::asio::steady_timer wake_;
    // Strand only: the entries this consumer holds, by job id.
    std::unordered_map<std::string, held> held_;
    bool pending_ = false;
    bool closed_ = false;
    bool failing_ = false;  // the last pass failed (logged once until it works again)
};

}  // namespace quickthumb
