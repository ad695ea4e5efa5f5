#pragma once
// The jobs core: the only way a job changes. Each operation commits through the store and returns
// the job as committed; every change is then told to every subscriber (the queue's feeder, the
// event stream, the Redis mirror, metrics, the workers), in commit order, on one strand. Progress
// is told the same way but never stored. The number of jobs waiting is derived here, from the
// changes, and nowhere else.
//
// Error policy: expected failures come back as values. A store failure is storage_full,
// storage_readonly or io_error (507/500 for a client; the worker keeps its outcome and saves it
// later); a refused transition is not_found, bad_request or conflict. Nothing here throws for them.
#include "quickthumb/job.hpp"
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace quickthumb {


class jobs_service {
public:
    using subscriber = std::function<void(const job_change&)>;

    // `blocking` runs the subscribers (on a strand).
    jobs_service(boost::asio::thread_pool& blocking, job_store& db, blob_store& files);
    ~jobs_service();
    jobs_service(const jobs_service&) = delete;
    jobs_service& operator=(const jobs_service&) = delete;

    // Adds a subscriber: it hears every change from then on, after the ones before it. Called
    // on the service's strand, one change at a time; it must not block. Subscribe before the
    // service takes traffic.
    void subscribe(subscriber s);

    // Start-up, before the service runs: jobs a previous run left processing are queued again or
    // fail as interrupted, and what they half wrote is removed, as are uploads older than
    // orphan_age that no job owns; the waiting count starts from
    // what the store then holds. Nothing is published: no subscriber is listening yet. (The
    // store's part blocks: run it before traffic.)
    boost::asio::awaitable<job_store::recovery> recover_interrupted();

    static constexpr std::chrono::seconds orphan_age{3600};

    // Jobs queued (waiting in the store or handed to a worker not yet started): for 429 and metrics.
    std::int64_t waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }

    // ---- several instances (the Redis store) ----
    // A change read back from the shared events stream (c.from_stream): told to every subscriber
    // like a committed one, in stream order, and counted when it was another instance's.
    void observe(job_change c);
    // The waiting count as the shared store has it now (counted from the changes in between, it
    // could drift from the truth when events were trimmed before this instance read them).
    void resync_waiting(std::int64_t queued) noexcept { waiting_.store(queued, std::memory_order_relaxed); }

    // ---- what clients do ----
    struct accepted {
        bool replayed = false;  // the idempotency key named earlier jobs: nothing new was made
        std::vector<job> jobs;  // the new jobs as committed, or the key's earlier jobs as they are now
    };
    // One received file of an upload: its bytes written to the blob store, not yet committed.
    struct received {
        blob_store::upload* blob = nullptr;
        std::string filename;
        std::int64_t bytes = 0;
    };
    // An upload's jobs, one per file, durable before this returns: the files are committed as
    // the jobs' uploads, then the rows; once for an idempotency key within its window (a replay
    // answers the key's earlier jobs and keeps nothing of this one). On failure nothing stays.
    boost::asio::awaitable<result<accepted>> accept(std::vector<received> files, job_params params,
                                                    int max_attempts, std::optional<std::string> key);
    // New jobs whose uploads are already stored (the rows only).
    boost::asio::awaitable<result<accepted>> accept(std::vector<job> jobs, std::optional<std::string> key);
    // queued|processing -> cancelled; its thumbnails are removed, a running attempt stops at its
    // next safe point (the workers hear the change). Cancelling a cancelled job returns it as it is.
    boost::asio::awaitable<result<job>> cancel(std::string id);
    // failed|cancelled -> queued, when its upload is still stored (else conflict).
    boost::asio::awaitable<result<job>> retry(std::string id);

    // ---- what workers do ----
    boost::asio::awaitable<result<job>> start(std::string id);
    // Told, not stored: a running job's progress (0..100).
    void progress(const job& processing, int percent);
    boost::asio::awaitable<result<job>> succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                double attempt_seconds);
    boost::asio::awaitable<result<job>> fail(std::string id, job_source src, error err, double attempt_seconds);
    boost::asio::awaitable<result<job>> retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                    double attempt_seconds);
    // Stopped by a shutdown: queued again without counting the attempt.
    boost::asio::awaitable<result<job>> release(std::string id);

    // ---- the retention sweep ----
    // Deletes up to `limit` final jobs last changed before `cutoff`, their files first, and old
    // idempotency keys. Returns how many jobs were deleted.
    boost::asio::awaitable<result<int>> expire(std::int64_t cutoff, std::int64_t now, int limit);

    // ---- reads ----
    // Each read fails only as the store does (io_error and the like).
    // The jobs an idempotency key named within its window, as they are now (swept ones left
    // out); nullopt when the key is new.
    boost::asio::awaitable<result<std::optional<std::vector<job>>>> replay(std::string key);
    // Whether the store answers a read (for /readyz).
    boost::asio::awaitable<result<void>> store_ready();
    boost::asio::awaitable<result<std::optional<job>>> get(std::string id);
    boost::asio::awaitable<result<list_page>> list(std::optional<job_state> state, int limit,
                                                   std::optional<std::int64_t> before);
    // The jobs in each state (for /metrics).
    boost::asio::awaitable<result<std::map<job_state, std::int64_t>>> count_by_state();

private:
    void committed(job_change c);  // the store's commit listener (writer thread)
    void publish(job_change c);

    job_store& db_;
    blob_store& files_;
    boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
    std::vector<subscriber> subscribers_;  // strand only once traffic runs
    // The waiting count follows a change: +1 into queued, -1 out of it.
    void count_waiting(const job_change& c) noexcept;
    std::atomic<std::int64_t> waiting_{0};
};

}  // namespace quickthumb
