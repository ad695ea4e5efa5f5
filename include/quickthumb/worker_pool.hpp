#pragma once
// N worker coroutines on the image thread pool. Each takes a job id from the channel, marks it
// processing in the store, makes its thumbnails (one decode for all sizes), writes each atomically
// and records the outcome.
#include "quickthumb/job_queue.hpp"
#include "quickthumb/storage.hpp"
#include "quickthumb/store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>

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
};

class worker_pool {
public:
    worker_pool(boost::asio::thread_pool& pool, job_queue& queue, store& db, storage& files, worker_options opts);

    // Spawns the workers. `on_all_stopped` runs (on a pool thread) when the last one has exited,
    // which happens after the queue's channel is closed and each finished its current job.
    void start(std::function<void()> on_all_stopped);

    int busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

private:
    boost::asio::awaitable<void> run_worker();
    boost::asio::awaitable<void> process(std::string id);
    // The blocking part of a job: read the upload, make the thumbnails, write each atomically.
    job_outcome run_job(const job& j) const;

    boost::asio::thread_pool& pool_;
    job_queue& queue_;
    store& db_;
    storage& files_;
    worker_options opts_;
    std::atomic<int> running_{0};
    std::atomic<int> busy_{0};
    std::function<void()> on_all_stopped_;
};

// The output file name for a thumbnail: thumb_<w>x<h>.<ext>.
std::string output_name(int width, int height, output_format fmt);

}  // namespace quickthumb
