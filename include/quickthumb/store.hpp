#pragma once
// The store: SQLite is the source of truth for every job. WAL mode, a versioned schema, and a
// single writer thread that group-commits: every write queued while a transaction is running goes
// into the next one, so a burst of uploads costs one fsync, not one each. A write's completion is
// delivered only after its transaction is durable.
//
// Reads are blocking (microseconds on an index) and must be called from a thread pool, never from
// the network thread.
#include "quickthumb/job.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <thread>
#include <vector>

namespace SQLite {
class Database;
}

namespace quickthumb {

// What a failed store write means to a client: storage_full when SQLite found the disk full (the
// upload gets 507 and the service recovers when space returns), io_error otherwise.
error store_failure(const std::exception& e);

struct list_page {
    std::vector<job> jobs;
    std::optional<std::int64_t> next_cursor;  // seq to pass as `before` for the next page
};

class store {
public:
    // Opens (creating if needed) the database and migrates it. Throws on failure: fatal at start-up.
    explicit store(const std::filesystem::path& db_path);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    static constexpr int schema_version = 3;

    // ---- writes (group-committed; each runs inside the shared transaction) ----

    // The job writes below return the job as committed. Each change they make is also handed to
    // the commit listener, on the writer thread, once the transaction holding it is durable and
    // before the writer's caller resumes, in commit order. A store failure (a full disk, a
    // read-only or failing file) comes back as storage_full, storage_readonly or io_error; a
    // refused transition as not_found, bad_request or conflict. None of them throws.
    using commit_listener = std::function<void(job_change)>;
    // It must not block (the writer thread runs it). Null: no one listens (the listener's owner
    // is going away; once this returns it is not called again).
    void set_commit_listener(commit_listener listener);

    // Inserts new jobs (state queued). All in one transaction. Returns them with their seq.
    boost::asio::awaitable<result<std::vector<job>>> insert(std::vector<job> jobs);

    // How long an Idempotency-Key names the jobs of its first request.
    static constexpr std::int64_t idempotency_window_ms = 24ll * 3600 * 1000;
    struct insert_outcome {
        bool replayed = false;             // the key was seen: nothing was inserted
        std::vector<std::string> job_ids;  // the jobs the key names (the new ones unless replayed)
        std::vector<job> inserted;         // the new jobs as committed (empty when replayed)
    };
    // Inserts new jobs unless `key` was used within the window, in which case the jobs of that
    // first request are returned instead. The check and the insert are one transaction, so two
    // racing requests with one key make one set of jobs.
    boost::asio::awaitable<result<insert_outcome>> insert_once(std::vector<job> jobs, std::string key);
    // The job ids a key named, if it was used within the window (a read: call from a pool).
    std::optional<std::vector<std::string>> idempotent_jobs(const std::string& key, std::int64_t now);
    // queued -> processing, attempts + 1. not_found when absent, bad_request when the job is not
    // queued (cancelled meanwhile, say).
    boost::asio::awaitable<result<job>> start(std::string id);
    boost::asio::awaitable<result<void>> set_progress(std::string id, int progress);
    // An attempt's outcome. `attempt_seconds` is not stored: it rides along in the published change.
    // processing -> succeeded with its source details and outputs.
    boost::asio::awaitable<result<job>> succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                std::optional<double> attempt_seconds = std::nullopt);
    // processing -> failed with the error (source details when known).
    boost::asio::awaitable<result<job>> fail(std::string id, job_source src, error err,
                                             std::optional<double> attempt_seconds = std::nullopt);
    // processing -> queued after a transient failure: the error is kept for the job's JSON and
    // the job is not handed out again before `run_after` (ms since the epoch).
    boost::asio::awaitable<result<job>> retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                    std::optional<double> attempt_seconds = std::nullopt);
    // processing -> queued without counting the attempt (stopped by a shutdown, not by the job).
    boost::asio::awaitable<result<job>> release(std::string id);

    // queued|processing -> cancelled. A job already cancelled is returned as it is (previous is
    // then cancelled too, and nothing is published); a finished one is a conflict.
    boost::asio::awaitable<result<job_change>> cancel(std::string id);
    // failed|cancelled -> queued with its attempts, error and outputs reset. Others: conflict.
    boost::asio::awaitable<result<job_change>> retry(std::string id);
    // Final jobs last changed before `cutoff` (ms since the epoch), oldest first, at most `limit`.
    std::vector<std::string> expired(std::int64_t cutoff, int limit);
    // Deletes those of `ids` that are still final and older than `cutoff`, and idempotency keys
    // older than the window. Returns how many jobs were deleted.
    boost::asio::awaitable<result<int>> remove_expired(std::vector<std::string> ids, std::int64_t cutoff, std::int64_t now);

    // ---- start-up (blocking; before the service runs) ----

    // Jobs left `processing` by a previous run (it crashed or was killed mid-job) go back to
    // `queued`, the attempt counted; one that has used all its attempts fails as `interrupted`
    // (an image that crashes the process must not crash it forever).
    struct recovery {
        int requeued = 0;
        int failed = 0;
        std::vector<std::string> requeued_ids;  // their half-done outputs must go
        std::vector<std::string> failed_ids;
    };
    recovery recover_interrupted();

    // ---- reads (blocking; call from a thread pool) ----
    std::optional<job> get(const std::string& id);
    // Newest first; `before` is a cursor (exclusive seq), `state` filters when set.
    list_page list(std::optional<job_state> state, int limit, std::optional<std::int64_t> before);
    // Queued jobs in order of arrival after seq `after`.
    std::vector<std::pair<std::int64_t, std::string>> queued_after(std::int64_t after, int limit);
    // Queued jobs due to run at `now` (run_after <= now), oldest first: the feeder's scan.
    std::vector<std::string> due(std::int64_t now, int limit);
    // The earliest run_after still in the future among queued jobs: when the feeder must look again.
    std::optional<std::int64_t> next_due_after(std::int64_t now);
    std::int64_t count(job_state state);
    // The jobs in each state, every state present (0 when none): one GROUP BY.
    std::map<job_state, std::int64_t> count_by_state();

    // The meta table: small named values (the instance id, mirror cursors). A read.
    std::optional<std::string> get_meta(const std::string& key);

    // ---- the Redis mirror's queries ----
    struct job_ref {
        std::int64_t seq = 0;
        std::string id;
        job_state state = job_state::queued;
    };
    // Sets `key` to `value` unless it has one already; returns the value it has now.
    boost::asio::awaitable<result<std::string>> put_meta_once(std::string key, std::string value);
    // Sets `key` to the newest job's seq (0 when there is none) unless it has a value already.
    boost::asio::awaitable<result<void>> put_newest_seq_once(std::string key);
    // Raises the number in `key` to `value`; never lowers it (instances sharing the file move it too).
    boost::asio::awaitable<result<void>> raise_meta(std::string key, std::int64_t value);
    // Reads (blocking). Jobs after seq `after`, any state, by seq, at most `limit`.
    std::vector<job_ref> jobs_after(std::int64_t after, int limit);
    // Queued or processing jobs with `after` < seq <= `up_to`, by seq, at most `limit`.
    std::vector<job_ref> waiting_between(std::int64_t after, std::int64_t up_to, int limit);
    // The states of those of `ids` this store has.
    std::unordered_map<std::string, job_state> states_of(const std::vector<std::string>& ids);

    // Transactions committed by the writer so far (group commit makes this far less than writes).
    std::uint64_t commits() const noexcept { return commits_.load(); }

    // Internal: the prepared statements kept for one connection (store.cpp).
    struct statements;

private:
    struct pending {
        // Runs in the transaction; records the job changes it made (cleared before each run).
        std::function<void(SQLite::Database&, std::vector<job_change>&)> run;
        std::function<void(std::exception_ptr)> complete;      // after commit (or failure)
        std::vector<job_change> changes;
    };
    // write() for the job writes: fn(db, changes) records what it changed, and a store failure
    // becomes the result's error instead of an exception.
    template <class T, class F>
    boost::asio::awaitable<T> write_jobs(F fn);
    // Queues `run` for the next group transaction; completes once it is committed (rethrows what
    // run or the commit threw).
    boost::asio::awaitable<void> submit(std::function<void(SQLite::Database&, std::vector<job_change>&)> run);
    void enqueue(pending p);
    void writer_loop();
    // One group transaction over `batch` (the writer thread's): false when a write threw, the
    // transaction then rolled back and nothing of it kept.
    bool run_batch(std::vector<pending>& batch, std::vector<std::exception_ptr>& outcomes, bool savepoints);
    void migrate(SQLite::Database& db);

    std::filesystem::path path_;
    std::unique_ptr<SQLite::Database> writer_db_;
    std::unique_ptr<SQLite::Database> reader_db_;
    std::mutex reader_mutex_;
    // Prepared statements kept on the read connection (under reader_mutex_; before it closes).
    std::unique_ptr<statements> reader_statements_;

    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::vector<pending> queue_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> commits_{0};
    std::mutex listener_mutex_;
    commit_listener listener_;  // under listener_mutex_
    std::thread writer_;
};

template <class T, class F>
boost::asio::awaitable<T> store::write_jobs(F fn) {
    auto value = std::make_shared<std::optional<T>>();
    std::optional<error> failed;
    std::function<void(SQLite::Database&, std::vector<job_change>&)> run =
        [value, fn = std::move(fn)](SQLite::Database& db, std::vector<job_change>& changes) mutable {
            value->emplace(fn(db, changes));
        };
    try {
        co_await submit(std::move(run));
    } catch (const std::exception& e) {
        failed = store_failure(e);  // (no co_return inside a handler: GCC 12 miscompiles it)
    }
    if (failed) co_return T(std::move(*failed));
    co_return std::move(**value);
}

}  // namespace quickthumb
