#pragma once
// The optional Redis mirror of the queue: every accepted job is added to the Stream
// `quickthumb:jobs` and taken into this instance's pending list of the consumer group
// `quickthumb`; it is acknowledged (and deleted, to keep the stream small) when the job is final.
// So Redis shows, at any time, which jobs are waiting or running and who holds them, and entries
// left pending by a dead consumer are claimed (XAUTOCLAIM) by a live one.
//
// SQLite stays the source of truth and the only thing that drives work. Redis down, slow or
// restarted never stops an upload or a worker: the change subscriber only records what happened (bounded),
// the mirror reconnects with backoff, and on every (re)connect it re-derives from SQLite and the
// stream what Redis is missing. The rules are written out in redis_mirror.cpp.
//
// Everything Redis-related runs in one coroutine on a strand of the network io_context; SQLite
// reads go to the blocking pool, cursor updates through the store's writer.
#include "quickthumb/job.hpp"
#include "quickthumb/redis_client.hpp"
#include "quickthumb/job_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace quickthumb {

// One stream entry as the mirror reads it.
struct stream_entry {
    std::string id;   // "ms-seq"
    std::string job;  // its job field; empty when the entry was deleted or carries none
};

struct redis_mirror_options {
    // A pending entry idle this long belongs to a consumer presumed dead (--redis-claim-idle).
    std::chrono::milliseconds claim_idle{60'000};
    // How often the pending list is checked against SQLite while connected (entries acknowledged
    // elsewhere, dead consumers). 0 = derived from claim_idle (clamped to 1 s .. 60 s).
    std::chrono::milliseconds reconcile_every{0};
    std::size_t batch = 500;               // jobs per pipeline
    std::size_t max_events = 16384;        // finished/requeued events held before falling back to a full reconcile
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    redis_options client;
};

class redis_mirror {
public:
    static constexpr const char* stream_key = "quickthumb:jobs";
    static constexpr const char* group_name = "quickthumb";
    static constexpr const char* consumer_meta_key = "redis.consumer";    // this data directory's consumer name
    static constexpr const char* cursor_meta_key = "redis.mirrored_seq";  // every job up to this seq was added to the stream

    redis_mirror(boost::asio::io_context& io, job_store& db, redis_url url, redis_mirror_options opts = {});
    ~redis_mirror();
    redis_mirror(const redis_mirror&) = delete;
    redis_mirror& operator=(const redis_mirror&) = delete;

    // Starts the mirror's coroutine. It runs until stop().
    void start();
    // Ends the coroutine promptly (closes the connection, cancels waits). Thread-safe.
    void stop();

    // A job change (the jobs service's subscriber): new jobs set the catch-up flag; a job that
    // finished or went back to queued is recorded. Thread-safe, never blocks, only records and wakes.
    void on_change(const job_change& c);
    // Queues a finished (true) or requeued (false) event, or falls back to a full reconcile when
    // too many are waiting.
    void record(const std::string& id, bool finished);

    // "connecting", "up", "down: <reason>" or "stopped". Thread-safe.
    std::string state() const;
    // The last connection or command failure ("" when none yet). Thread-safe.
    std::string last_error() const;
    // The consumer name once known ("" before). Thread-safe.
    std::string consumer() const;
    // For GET /readyz: {"redis": state, "redis_consumer": name}.
    boost::json::object readiness() const;

private:
    struct event {
        std::string id;
        bool final = false;  // finished (true) or requeued (false)
    };
    struct job_row {
        std::int64_t seq = 0;
        std::string id;
        bool final = false;
    };
    using entry_list = std::vector<stream_entry>;

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<result<void>> session();
    boost::asio::awaitable<result<void>> serve();
    boost::asio::awaitable<result<void>> check_eviction_policy();
    boost::asio::awaitable<result<void>> create_group();
    boost::asio::awaitable<result<void>> reconcile();
    boost::asio::awaitable<result<void>> catch_up();
    boost::asio::awaitable<result<void>> apply(std::deque<event> events);
    boost::asio::awaitable<result<void>> add(std::vector<job_row> rows);
    boost::asio::awaitable<result<void>> resolve(entry_list entries);
    boost::asio::awaitable<result<void>> ack(std::vector<std::string> entry_ids);
    boost::asio::awaitable<result<entry_list>> take_new();
    boost::asio::awaitable<result<entry_list>> read_own_pending();
    boost::asio::awaitable<result<entry_list>> claim_idle();

    void wake();
    void set_state(std::string state, std::string error);
    std::chrono::milliseconds reconcile_interval() const;

    job_store& db_;
    redis_mirror_options opts_;
    std::string display_url_;

    // Shared with on_change (any thread), under mutex_.
    mutable std::mutex mutex_;
    std::deque<event> events_;
    bool accepted_ = false;   // jobs were committed since the last catch-up
    bool overflow_ = false;   // events were dropped: the next pass is a full reconcile
    std::string state_ = "connecting";
    std::string last_error_;
    std::string consumer_name_;
    std::atomic<bool> wake_posted_{false};

    // The strand's own (the mirror coroutine and what it posts).
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    redis_client client_;
    boost::asio::steady_timer wake_;   // waits for work, the next reconcile or heartbeat
    boost::asio::steady_timer retry_;  // the backoff between connection attempts
    bool stopping_ = false;
    bool reached_up_ = false;          // this session got up: the backoff starts over
    bool unknown_logged_ = false;      // entries of jobs not in this store were reported this session
    std::string consumer_;
    // job id -> its entry in this consumer's pending list.
    std::unordered_map<std::string, std::string> entries_;
    // The highest seq whose XADD this instance saw confirmed (the meta cursor may lag behind it
    // by one write, or be ahead of it when another instance shares the data directory).
    std::int64_t added_up_to_ = 0;
    std::minstd_rand jitter_;
};

}  // namespace quickthumb
