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
#include <memory>
#include <mutex>
#include <optional>
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

    // Runs fn(db) on the writer thread inside the next group transaction, then completes with fn's
    // value once the transaction is committed. One failing write does not undo the others: when
    // one throws, the batch is rolled back and run again with a savepoint per write. So fn may run
    // more than once and must not consume what it captured. An exception from fn, or a failed
    // commit, is rethrown to the caller.
    template <class T, class F>
    boost::asio::awaitable<T> write(F fn);

    // Inserts new jobs (state queued). All in one transaction.
    boost::asio::awaitable<result<void>> insert(std::vector<job> jobs);

    // How long an Idempotency-Key names the jobs of its first request.
    static constexpr std::int64_t idempotency_window_ms = 24ll * 3600 * 1000;
    struct insert_outcome {
        bool replayed = false;             // the key was seen: nothing was inserted
        std::vector<std::string> job_ids;  // the jobs the key names (the new ones unless replayed)
    };
    // Inserts new jobs unless `key` was used within the window, in which case the jobs of that
    // first request are returned instead. The check and the insert are one transaction, so two
    // racing requests with one key make one set of jobs.
    boost::asio::awaitable<result<insert_outcome>> insert_once(std::vector<job> jobs, std::string key);
    // The job ids a key named, if it was used within the window (a read: call from a pool).
    std::optional<std::vector<std::string>> idempotent_jobs(const std::string& key, std::int64_t now);
    // queued -> processing, attempts + 1. Returns the job as it is now. not_found when absent,
    // bad_request when the job is not queued (cancelled meanwhile, say).
    boost::asio::awaitable<result<job>> start(std::string id);
    boost::asio::awaitable<result<void>> set_progress(std::string id, int progress);
    // processing -> succeeded with its source details and outputs.
    boost::asio::awaitable<result<void>> succeed(std::string id, job_source src, std::vector<job_output> outputs);
    // processing -> failed with the error (source details when known).
    boost::asio::awaitable<result<void>> fail(std::string id, job_source src, error err);
    // processing -> queued after a transient failure: the error is kept for the job's JSON and
    // the job is not handed out again before `run_after` (ms since the epoch).
    boost::asio::awaitable<result<void>> retry_later(std::string id, job_source src, error err, std::int64_t run_after);
    // processing -> queued without counting the attempt (stopped by a shutdown, not by the job).
    boost::asio::awaitable<result<void>> release(std::string id);

    struct change {
        job_state previous = job_state::queued;  // the state before the change
        job now;                                 // the job after it
    };
    // queued|processing -> cancelled. A job already cancelled is returned as it is; a finished
    // one is a conflict.
    boost::asio::awaitable<result<change>> cancel(std::string id);
    // failed|cancelled -> queued with its attempts, error and outputs reset. Others: conflict.
    boost::asio::awaitable<result<change>> retry(std::string id);
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

    // Runs fn(db) on the read-only connection (blocking; call from a thread pool). For queries
    // other modules own (the Redis mirror's, say) without growing this class for each.
    template <class T, class F>
    T read(F fn) {
        std::lock_guard lk(reader_mutex_);
        return fn(*reader_db_);
    }

    // The meta table: small named values (the instance id, mirror cursors). get_meta is a read;
    // put_meta is for use inside write().
    std::optional<std::string> get_meta(const std::string& key);
    static void put_meta(SQLite::Database& db, const std::string& key, const std::string& value);

    // Transactions committed by the writer so far (group commit makes this far less than writes).
    std::uint64_t commits() const noexcept { return commits_.load(); }

    // Internal: the prepared statements kept for one connection (store.cpp).
    struct statements;

private:
    struct pending {
        std::function<void(SQLite::Database&)> run;            // runs in the transaction
        std::function<void(std::exception_ptr)> complete;      // after commit (or failure)
    };
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
    std::thread writer_;
};

template <class T, class F>
boost::asio::awaitable<T> store::write(F fn) {
    // The result lives in the coroutine frame; the writer thread fills it before completing.
    auto value = std::make_shared<std::optional<T>>();
    auto initiate = [this, value, fn = std::move(fn)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        enqueue(pending{
            [value, fn = std::move(fn)](SQLite::Database& db) mutable { value->emplace(fn(db)); },
            [h](std::exception_ptr ep) {
                auto ex = boost::asio::get_associated_executor(*h);
                boost::asio::post(ex, [h, ep]() mutable { std::move (*h)(ep); });
            }});
    };
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        std::move(initiate), boost::asio::use_awaitable);
    co_return std::move(**value);
}

}  // namespace quickthumb
