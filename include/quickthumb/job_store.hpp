#pragma once
// Where jobs are kept: the interface every job store implements (SQLite today: open_sqlite_store),
// so that the jobs service and the modules that read jobs do not depend on one. Every backend
// passes the same interface tests (tests/test_store_*.cpp and others, through tests/support/stores.hpp).
//
// Every operation is an awaitable returning result<T>: writes complete once what they wrote is
// durable, reads run on the store's own reader, so no caller blocks or offloads. Only the start-up
// recovery blocks (it runs before the service does). A store failure (a full disk, a read-only or
// failing file) comes back as storage_full, storage_readonly or io_error, never as an exception.
#include "quickthumb/job.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace quickthumb {

struct list_page {
    std::vector<job> jobs;
    std::optional<std::int64_t> next_cursor;  // seq to pass as `before` for the next page
};

class job_store {
public:
    virtual ~job_store() = default;

    // ---- writes ----

    // The job writes below return the job as committed. Each change they make is also handed to
    // the commit listener, once the write holding it is durable and before the writer's caller
    // resumes, in commit order. A refused transition comes back as not_found, bad_request or
    // conflict.
    using commit_listener = std::function<void(job_change)>;
    // It must not block (a store's writer runs it). Null: no one listens (the listener's owner
    // is going away; once this returns it is not called again).
    virtual void set_commit_listener(commit_listener listener) = 0;

    // Inserts new jobs (state queued). All in one transaction. Returns them with their seq.
    virtual boost::asio::awaitable<result<std::vector<job>>> insert(std::vector<job> jobs) = 0;

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
    virtual boost::asio::awaitable<result<insert_outcome>> insert_once(std::vector<job> jobs, std::string key) = 0;
    // The job ids a key named, if it was used within the window.
    virtual boost::asio::awaitable<result<std::optional<std::vector<std::string>>>> idempotent_jobs(std::string key,
                                                                                                  std::int64_t now) = 0;
    // queued -> processing, attempts + 1. not_found when absent, bad_request when the job is not
    // queued (cancelled meanwhile, say).
    virtual boost::asio::awaitable<result<job>> start(std::string id) = 0;
    virtual boost::asio::awaitable<result<void>> set_progress(std::string id, int progress) = 0;
    // An attempt's outcome. `attempt_seconds` is not stored: it rides along in the published change.
    // processing -> succeeded with its source details and outputs.
    virtual boost::asio::awaitable<result<job>> succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                std::optional<double> attempt_seconds = std::nullopt) = 0;
    // processing -> failed with the error (source details when known).
    virtual boost::asio::awaitable<result<job>> fail(std::string id, job_source src, error err,
                                             std::optional<double> attempt_seconds = std::nullopt) = 0;
    // processing -> queued after a transient failure: the error is kept for the job's JSON and
    // the job is not handed out again before `run_after` (ms since the epoch).
    virtual boost::asio::awaitable<result<job>> retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                    std::optional<double> attempt_seconds = std::nullopt) = 0;
    // processing -> queued without counting the attempt (stopped by a shutdown, not by the job).
    virtual boost::asio::awaitable<result<job>> release(std::string id) = 0;

    // queued|processing -> cancelled. A job already cancelled is returned as it is (previous is
    // then cancelled too, and nothing is published); a finished one is a conflict.
    virtual boost::asio::awaitable<result<job_change>> cancel(std::string id) = 0;
    // failed|cancelled -> queued with its attempts, error and outputs reset. Others: conflict.
    virtual boost::asio::awaitable<result<job_change>> retry(std::string id) = 0;
    // Final jobs last changed before `cutoff` (ms since the epoch), oldest first, at most `limit`.
    virtual boost::asio::awaitable<result<std::vector<std::string>>> expired(std::int64_t cutoff, int limit) = 0;
    // Deletes those of `ids` that are still final and older than `cutoff`, and idempotency keys
    // older than the window. Returns how many jobs were deleted.
    virtual boost::asio::awaitable<result<int>> remove_expired(std::vector<std::string> ids, std::int64_t cutoff, std::int64_t now) = 0;

    // ---- start-up (blocking; before the service runs) ----

    // Jobs left `processing` by a previous run (it crashed or was killed mid-job) go back to
    // `queued`, the attempt counted; one that has used all its attempts fails as `interrupted`
    // (an image that crashes the process must not crash it forever).
    struct recovery {
        std::int64_t queued = 0;  // jobs queued once it is done (the waiting count starts there)
        int requeued = 0;
        int failed = 0;
        std::vector<std::string> requeued_ids;  // their half-done outputs must go
        std::vector<std::string> failed_ids;
    };
    virtual recovery recover_interrupted() = 0;

    // ---- reads ----
    virtual boost::asio::awaitable<result<std::optional<job>>> get(std::string id) = 0;
    // Those of `ids` that exist, in the order asked.
    virtual boost::asio::awaitable<result<std::vector<job>>> get_all(std::vector<std::string> ids) = 0;
    // Newest first; `before` is a cursor (exclusive seq), `state` filters when set.
    virtual boost::asio::awaitable<result<list_page>> list(std::optional<job_state> state, int limit,
                                                           std::optional<std::int64_t> before) = 0;
    // Queued jobs due to run at `now` (run_after <= now), oldest first: the feeder's scan.
    virtual boost::asio::awaitable<result<std::vector<std::string>>> due(std::int64_t now, int limit) = 0;
    // The earliest run_after still in the future among queued jobs: when the feeder must look again.
    virtual boost::asio::awaitable<result<std::optional<std::int64_t>>> next_due_after(std::int64_t now) = 0;
    virtual boost::asio::awaitable<result<std::int64_t>> count(job_state state) = 0;
    // The jobs in each state, every state present (0 when none): one GROUP BY.
    virtual boost::asio::awaitable<result<std::map<job_state, std::int64_t>>> count_by_state() = 0;

    // The meta table: small named values (the instance id, mirror cursors).
    virtual boost::asio::awaitable<result<std::optional<std::string>>> get_meta(std::string key) = 0;

    // ---- the Redis mirror's queries ----
    struct job_ref {
        std::int64_t seq = 0;
        std::string id;
        job_state state = job_state::queued;
    };
    // Sets `key` to `value` unless it has one already; returns the value it has now.
    virtual boost::asio::awaitable<result<std::string>> put_meta_once(std::string key, std::string value) = 0;
    // Sets `key` to the newest job's seq (0 when there is none) unless it has a value already.
    virtual boost::asio::awaitable<result<void>> put_newest_seq_once(std::string key) = 0;
    // Raises the number in `key` to `value`; never lowers it (instances sharing the file move it too).
    virtual boost::asio::awaitable<result<void>> raise_meta(std::string key, std::int64_t value) = 0;
    // Jobs after seq `after`, any state, by seq, at most `limit`.
    virtual boost::asio::awaitable<result<std::vector<job_ref>>> jobs_after(std::int64_t after, int limit) = 0;
    // Queued or processing jobs with `after` < seq <= `up_to`, by seq, at most `limit`.
    virtual boost::asio::awaitable<result<std::vector<job_ref>>> waiting_between(std::int64_t after, std::int64_t up_to,
                                                                                 int limit) = 0;
    // The states of those of `ids` this store has.
    virtual boost::asio::awaitable<result<std::unordered_map<std::string, job_state>>> states_of(
        std::vector<std::string> ids) = 0;

    // Transactions committed so far (group commit makes this far less than writes).
    virtual std::uint64_t commits() const noexcept = 0;

};

// Opens (creating if needed) the SQLite database at `db_path` and migrates it: WAL,
// synchronous=FULL, one writer thread that group-commits. Throws on failure: fatal at start-up.
std::unique_ptr<job_store> open_sqlite_store(const std::filesystem::path& db_path);

}  // namespace quickthumb
