#pragma once
// N worker coroutines on the image thread pool. Each takes a job id from the channel, marks it
// processing in the store, makes its thumbnails (one decode for all sizes), writes each atomically
// and records the outcome:
//   success                      -> succeeded (the upload is deleted unless keep_uploads)
//   transient failure (I/O, full disk, timeout, a bug's exception), attempts left
//                                -> queued again with run_after = now + backoff with jitter
//   permanent failure, or no attempts left -> failed, with the reason
//   cancelled (DELETE) while running -> stops at the next safe point; its outputs are removed
//   shutdown past its grace      -> stops at the next safe point; back to queued, attempt not counted
#include "quickthumb/job_hooks.hpp"
#include "quickthumb/job_queue.hpp"
#include "quickthumb/storage.hpp"
#include "quickthumb/store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace quickthumb {

// What one attempt at a job produced: outputs, or the reason it failed.
struct job_outcome {
    job_source source;
    std::vector<job_output> outputs;
    std::optional<error> failure;
};

struct worker_options {
    int count = 1;
    std::int64_t max_pixels = 100'000'000;
    std::chrono::milliseconds job_timeout{60'000};
    bool keep_uploads = false;
};

class worker_pool {
public:
    worker_pool(boost::asio::thread_pool& pool, job_queue& queue, store& db, storage& files, worker_options opts,
                const job_hooks& hooks);

    // Spawns the workers. `on_all_stopped` runs (on a pool thread) when the last one has exited,
    // which happens after the queue's channel is closed and each finished its current job.
    void start(std::function<void()> on_all_stopped);

    int busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

    // Asks a running job to stop at its next safe point (its row is already cancelled). Returns
    // whether it was running here. Thread-safe.
    bool cancel_running(const std::string& id);
    // Shutdown past its grace: every running job stops at its next safe point and goes back to
    // queued for the next start. Thread-safe.
    void abort_all() noexcept { aborting_ = true; }

private:
    // What a running job's safe points check.
    struct job_control {
        std::atomic<bool> cancelled{false};
        std::chrono::steady_clock::time_point deadline;
        std::atomic<int> progress{0};
    };
    boost::asio::awaitable<void> run_worker();
    boost::asio::awaitable<void> process(std::string id);
    // The blocking part of a job: read the upload, make the thumbnails, write each atomically.
    job_outcome run_job(const job& j, job_control& ctl) const;
    void remove_outputs(const std::string& id) const;
    // Runs a store write until it commits (retrying while SQLite cannot write); nullopt when a
    // shutdown gave up on it.
    template <class Write>
    boost::asio::awaitable<std::optional<result<void>>> save(const std::string& id, Write write);

    boost::asio::thread_pool& pool_;
    job_queue& queue_;
    store& db_;
    storage& files_;
    worker_options opts_;
    std::atomic<int> running_{0};
    std::atomic<int> busy_{0};
    std::atomic<bool> aborting_{false};
    const job_hooks& hooks_;
    std::function<void()> on_all_stopped_;
    std::mutex running_mutex_;
    std::unordered_map<std::string, std::shared_ptr<job_control>> running_jobs_;
};

// The output file name for a thumbnail: thumb_<w>x<h>.<ext>.
std::string output_name(int width, int height, output_format fmt);

}  // namespace quickthumb
