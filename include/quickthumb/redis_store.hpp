#pragma once
// The job store on Redis (--store redis), for several instances sharing one Redis: every instance
// reads and changes the same jobs, so any of them answers for any job.
//
// Layout (all keys under the prefix, "quickthumb:" by default):
//   job:<id>          a hash per job (its fields, the work entry it has, the instance that ran it)
//   seq               the counter that numbers jobs (the list cursor)
//   all, state:<s>    sorted sets by seq: the list, newest first, per state
//   final             finished jobs by their last change (the retention sweep)
//   delayed           queued jobs waiting for run_after, by run_after
//   idem:<key>        an Idempotency-Key's first use and job ids (SET PX: it expires with its
//                     window); idem, the keys by first use, for the retention sweep
//   work              the Stream every queued job has one entry in, read by the consumer group
//                     "workers": each instance is a consumer, its pending list what it holds
//   events            a capped Stream of every change, fields as in job:<id>, for every
//                     instance's event stream and subscribers
//
// Every transition is one Lua script that checks the state inside it (so two instances racing to
// start one job start it once), changes the hash and the sets, adds, acknowledges or moves the
// job's work entry, and appends the event: all of it or none. A script's reply carries the job as
// committed, which the commit listener hears in reply order. Durable means what Redis's AOF gives
// (appendfsync everysec may lose the last second on a power cut; always loses nothing).
//
// One connection carries every call, pipelined: calls made while a round trip is in flight go
// out together in the next (the group commit of this store). A lost connection fails the calls in
// flight as storage_unavailable (their outcome unknown to the caller, as with any database) and
// the next call connects again. Redis Cluster is not supported: scripts build their keys.
#include "quickthumb/job_store.hpp"
#include "quickthumb/redis_client.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace quickthumb {

struct redis_store_options {
    std::string prefix = "quickthumb:";
    // This instance's name in the work group (the owner of the jobs it runs). A restarted instance
    // that keeps its name finds its own pending entries at once.
    std::string consumer;
    std::size_t max_events = 100'000;  // the events stream is trimmed (approximately) to this
    redis_options client;
};

// A work entry this instance was handed: its stream id and its job.
struct work_entry {
    std::string entry;
    std::string job;
};

// An event read back from the events stream: its id ("ms-seq") and the change.
struct stored_event {
    std::string id;
    std::string by;  // the consumer whose change it was
    job_change change;
};

class redis_job_store : public job_store {
public:
    // ---- the work stream (the cluster's queue) ----
    // Up to `count` new entries for this consumer (XREADGROUP >, not blocking).
    virtual boost::asio::awaitable<result<std::vector<work_entry>>> take(std::size_t count) = 0;
    // This consumer's own pending entries (a restart under the same name).
    virtual boost::asio::awaitable<result<std::vector<work_entry>>> own_pending(std::size_t count) = 0;
    // Entries idle for at least `idle` (their consumer presumed dead) become this consumer's
    // (XAUTOCLAIM), and each job is put right: a job left processing goes back to queued with the
    // attempt counted (or fails as interrupted once it used them all), published as a change.
    // Returns the entries whose jobs are queued and should run here; the others are acknowledged.
    virtual boost::asio::awaitable<result<std::vector<work_entry>>> claim_idle(std::chrono::milliseconds idle,
                                                                               std::size_t count) = 0;
    // Resets the idle time of those of `entries` this consumer still holds: the lease of the jobs
    // it has in hand or running. Returns those it no longer holds.
    virtual boost::asio::awaitable<result<std::vector<std::string>>> refresh(std::vector<std::string> entries) = 0;
    // Delayed jobs whose run_after has come get their work entry. Returns how many moved and the
    // next run_after still waiting (0 when none).
    struct promoted {
        int moved = 0;
        std::int64_t next_due = 0;
    };
    virtual boost::asio::awaitable<result<promoted>> promote_due(std::int64_t now) = 0;
    // Events after `after` ("0" or "" for the oldest kept), at most `count`.
    virtual boost::asio::awaitable<result<std::vector<stored_event>>> events_after(std::string after,
                                                                                   std::size_t count) = 0;
    // The same, waiting up to `block` for one to come (XREAD BLOCK, on a connection of its own so
    // the store's other calls do not wait behind it). One caller at a time.
    virtual boost::asio::awaitable<result<std::vector<stored_event>>> wait_events(std::string after, std::size_t count,
                                                                                  std::chrono::milliseconds block) = 0;
    // The newest `count` events, oldest first.
    virtual boost::asio::awaitable<result<std::vector<stored_event>>> latest_events(std::size_t count) = 0;

    virtual const redis_store_options& options() const noexcept = 0;
    virtual const redis_url& url() const noexcept = 0;
    // "up", "down: <reason>": the connection's state as last seen. Thread-safe.
    virtual std::string state() const = 0;
};

// An events stream id ("ms-seq") as the number SSE readers see: ms << 20 | seq, so it increases
// with the stream and is the same on every instance. 0 for an id that is not one.
std::uint64_t event_number(std::string_view stream_id) noexcept;

// Connects (checking that Redis answers within the connect timeout), loads the scripts and
// creates the work group. Throws config_error with the reason when Redis cannot be reached.
std::unique_ptr<redis_job_store> open_redis_store(const redis_url& url, redis_store_options opts);

}  // namespace quickthumb
