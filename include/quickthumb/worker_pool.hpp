#pragma once
// N worker coroutines on the image thread pool. Each takes a job id from the channel, marks it
// processing (through the jobs service), makes its thumbnails (one decode for all sizes), stores
// each in the blob store and records the outcome:
//   success                      -> succeeded (the upload is deleted unless keep_uploads)
//   transient failure (I/O, full disk, timeout, a bug's exception), attempts left
//                                -> queued again with run_after = now + backoff with jitter
//   permanent failure, or no attempts left -> failed, with the reason
//   cancelled (DELETE) while running -> stops at the next safe point; its outputs are removed
//   shutdown past its grace      -> stops at the next safe point; back to queued, attempt not counted
// Before its decode, a job reserves its estimated peak memory (image::estimate_memory, from the
// header) from the memory budget and waits while the budget is spent; its timeout runs from when
// it has the memory. A job that needs more than the whole budget fails as too_large_for_memory.
#include "quickthumb/file_io.hpp"
#include "quickthumb/image.hpp"
#include "quickthumb/work_queue.hpp"
#include "quickthumb/jobs_service.hpp"
#include "quickthumb/memory_budget.hpp"
#include "quickthumb/blob_store.hpp"

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
    // Where jobs reserve their memory; must outlive the pool. Null: no budget (tests of other things).
    memory_budget* budget = nullptr;
};

class worker_pool {
public:
    worker_pool(boost::asio::thread_pool& pool, work_queue& queue, jobs_service& jobs, blob_store& files,
                worker_options opts);

    // Spawns the workers. `on_all_stopped` runs (on a pool thread) when the last one has exited,
    // which happens after the queue's channel is closed and each finished its current job.
    void start(std::function<void()> on_all_stopped);

    int busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

    // A job change (the jobs service's subscriber): a running job that was cancelled stops at its
    // next safe point. Thread-safe.
    void on_change(const job_change& c);
    // Asks a running job to stop at its next safe point (its row is already cancelled). Returns
    // whether it was running here. Thread-safe.
    bool cancel_running(const std::string& id);
    // Shutdown past its grace: every running job stops at its next safe point and goes back to
    // queued for the next start. Thread-safe.
    // Jobs waiting for memory stop waiting (the budget is closed).
    void abort_all() noexcept;

private:
    // What a running job's safe points check.
    struct job_control {
        std::atomic<bool> cancelled{false};
        std::chrono::steady_clock::time_point deadline;
        std::atomic<int> progress{0};
        memory_budget::ticket memory_wait;  // a cancel calls off the wait for memory too
    };
    // A job ready to decode: its upload read, its header read, its peak memory estimated.
    struct prepared_job {
        stored_bytes data;
        image::header_info header;
        image::thumbnails_request request;
        std::uint64_t memory = 0;
    };
    boost::asio::awaitable<void> run_worker();
    boost::asio::awaitable<void> process(std::string id);
    // Reads the upload and what the decode will need; a failure is the attempt's outcome.
    boost::asio::awaitable<result<prepared_job>> prepare(const job& j, job_outcome& out) const;
    // Reserves the job's memory (waiting while the budget is spent): nullopt on success, else why not.
    boost::asio::awaitable<std::optional<error>> reserve_memory(const prepared_job& p, job_control& ctl,
                                                                memory_budget::reservation& held);
    // A safe point: records progress and says whether the job may go on.
    bool keep_going(const job& j, job_control& ctl, int percent) const;
    // The blocking part of a job: the thumbnails (one decode for every size), into out.outputs'
    // future bytes; a failure is in out.failure.
    std::vector<image::output> run_job(const job& j, job_control& ctl, prepared_job& p, job_outcome& out) const;
    // Stores the thumbnails, each once (two boxes can give the same output), listing them in out.
    boost::asio::awaitable<void> store_outputs(const job& j, job_control& ctl, std::vector<image::output> thumbs,
                                               job_outcome& out);
    boost::asio::awaitable<void> remove_outputs(const std::string& id);
    // Runs a store write until it commits or is refused (retrying while the store cannot write);
    // nullopt when a shutdown gave up on it.
    template <class Write>
    boost::asio::awaitable<std::optional<result<job>>> save(const std::string& id, Write write);

    boost::asio::thread_pool& pool_;
    work_queue& queue_;
    jobs_service& jobs_;
    blob_store& files_;
    worker_options opts_;
    std::atomic<int> running_{0};
    std::atomic<int> busy_{0};
    std::atomic<bool> aborting_{false};
    std::function<void()> on_all_stopped_;
    std::mutex running_mutex_;
    std::unordered_map<std::string, std::shared_ptr<job_control>> running_jobs_;
};

// The output file name for a thumbnail: thumb_<w>x<h>.<ext>.
std::string output_name(int width, int height, output_format fmt);

}  // namespace quickthumb
