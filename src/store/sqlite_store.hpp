#pragma once
// The SQLite job store (internal to src/store/; everyone else uses job_store). WAL mode, a
// versioned schema, and a single writer thread that group-commits: every write queued while a
// transaction is running goes into the next one, so a burst of uploads costs one fsync, not one each. A write's completion is
// delivered only after its transaction is durable.
//
// Reads run on the store's reader thread, one read connection, and resume the caller on its own
// executor: no caller blocks or offloads.
#include "quickthumb/job_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

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

// What a failed store operation means to a client: storage_full when SQLite found the disk full
// (the upload gets 507 and the service recovers when space returns), storage_readonly, io_error
// otherwise (the reason is logged, not told).
error store_failure(const std::exception& e, bool reading = false);


class sqlite_store final : public job_store {
public:
    // Opens (creating if needed) the database and migrates it. Throws on failure: fatal at start-up.
    explicit sqlite_store(const std::filesystem::path& db_path);
    ~sqlite_store() override;
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    static constexpr int schema_version = 3;

    void set_commit_listener(commit_listener listener) override;
    boost::asio::awaitable<result<std::vector<job>>> insert(std::vector<job> jobs) override;
    boost::asio::awaitable<result<insert_outcome>> insert_once(std::vector<job> jobs, std::string key) override;
    boost::asio::awaitable<result<std::optional<std::vector<std::string>>>> idempotent_jobs(std::string key,
                                                                                          std::int64_t now) override;
    boost::asio::awaitable<result<job>> start(std::string id) override;
    boost::asio::awaitable<result<void>> set_progress(std::string id, int progress) override;
    boost::asio::awaitable<result<job>> succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                std::optional<double> attempt_seconds) override;
    boost::asio::awaitable<result<job>> fail(std::string id, job_source src, error err,
                                             std::optional<double> attempt_seconds) override;
    boost::asio::awaitable<result<job>> retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                    std::optional<double> attempt_seconds) override;
    boost::asio::awaitable<result<job>> release(std::string id) override;
    boost::asio::awaitable<result<job_change>> cancel(std::string id) override;
    boost::asio::awaitable<result<job_change>> retry(std::string id) override;
    boost::asio::awaitable<result<std::vector<std::string>>> expired(std::int64_t cutoff, int limit) override;
    boost::asio::awaitable<result<int>> remove_expired(std::vector<std::string> ids, std::int64_t cutoff, std::int64_t now) override;
    recovery recover_interrupted() override;
    boost::asio::awaitable<result<std::optional<job>>> get(std::string id) override;
    boost::asio::awaitable<result<std::vector<job>>> get_all(std::vector<std::string> ids) override;
    boost::asio::awaitable<result<list_page>> list(std::optional<job_state> state, int limit,
                                                   std::optional<std::int64_t> before) override;
    boost::asio::awaitable<result<std::vector<std::string>>> due(std::int64_t now, int limit) override;
    boost::asio::awaitable<result<std::optional<std::int64_t>>> next_due_after(std::int64_t now) override;
    boost::asio::awaitable<result<std::int64_t>> count(job_state state) override;
    boost::asio::awaitable<result<std::map<job_state, std::int64_t>>> count_by_state() override;
    boost::asio::awaitable<result<std::optional<std::string>>> get_meta(std::string key) override;
    boost::asio::awaitable<result<std::string>> put_meta_once(std::string key, std::string value) override;
    boost::asio::awaitable<result<void>> put_newest_seq_once(std::string key) override;
    boost::asio::awaitable<result<void>> raise_meta(std::string key, std::int64_t value) override;
    boost::asio::awaitable<result<std::vector<job_ref>>> jobs_after(std::int64_t after, int limit) override;
    boost::asio::awaitable<result<std::vector<job_ref>>> waiting_between(std::int64_t after, std::int64_t up_to,
                                                                         int limit) override;
    boost::asio::awaitable<result<std::unordered_map<std::string, job_state>>> states_of(
        std::vector<std::string> ids) override;
    std::uint64_t commits() const noexcept override { return commits_.load(); }

    // Internal: the prepared statements kept for one connection (sqlite_store.cpp).
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
    // Runs fn(db, statements) on the reader thread with the read connection, resuming the caller
    // on its own executor; a SQLite failure becomes the result's error. `fn` must capture only by
    // reference (GCC 12 frees a moved lambda's owning captures twice inside coroutines).
    template <class T, class F>
    boost::asio::awaitable<result<T>> read(F fn);

    std::filesystem::path path_;
    std::unique_ptr<SQLite::Database> writer_db_;
    std::unique_ptr<SQLite::Database> reader_db_;
    std::mutex reader_mutex_;
    // Prepared statements kept on the read connection (under reader_mutex_; before it closes).
    std::unique_ptr<statements> reader_statements_;
    boost::asio::thread_pool reader_{1};

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
boost::asio::awaitable<T> sqlite_store::write_jobs(F fn) {
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
