#pragma once
// In-process job events for the live page (GET /api/v1/events). Every change of a job is
// published once, serialized once, and kept in a bounded ring with increasing ids, so a reader
// that reconnects with Last-Event-ID gets what it missed, and one that fell further behind than
// the ring is told so (and reloads). Publishing never blocks and never waits for a reader: a slow
// reader only falls behind in the ring, which is the bounded buffer.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace quickthumb {

struct job_event {
    std::uint64_t id = 0;  // increasing; assigned by the bus (consecutive, from its first id) or given
    std::string job;       // the job id, for ?job= filtering
    std::string data;      // the job's JSON as it is after the change
};

class event_bus {
public:
    // `first_id` should differ between runs of the service (the start time in ms, shifted left, is
    // what the app uses), so a Last-Event-ID from an earlier run is recognised as missed events.
    // `shared_ids`: ids come from publish_at, the same on every instance, so a reader's id newer
    // than any here is another instance's that this one has not read yet (it waits for what comes
    // after it) rather than a foreign one.
    explicit event_bus(std::size_t capacity = 4096, std::uint64_t first_id = 1, bool shared_ids = false);

    // Thread-safe, non-blocking. Returns the event's id.
    std::uint64_t publish(std::string job, std::string data);
    // The same with the id given (events numbered elsewhere: the Redis store's shared stream, so
    // every instance gives an event the same id). Ids must increase; one that does not is dropped.
    void publish_at(std::uint64_t id, std::string job, std::string data);

    struct read_result {
        std::vector<job_event> events;  // ids > after, oldest first, at most `max`
        std::uint64_t scanned_to = 0;   // the last id looked at (filtered-out ones included): the next `after`
        bool missed = false;            // events after `after` were dropped from the ring (or `after` is
                                        // not from this run): the reader must reload
    };
    // Events after `after` (for `job` only when it is not empty). Thread-safe.
    read_result since(std::uint64_t after, std::size_t max, const std::string& job = {}) const;
    std::uint64_t last_id() const;

    // A reader's wake-up: publish cancels the timer's wait on the timer's own executor. The reader
    // keeps the shared_ptr; the bus forgets it once it is gone.
    struct waiter {
        explicit waiter(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
        boost::asio::steady_timer timer;
    };
    std::shared_ptr<waiter> subscribe(boost::asio::any_io_executor ex);
    // Wakes every reader now (a shutdown: they look at the service's state and say goodbye).
    void wake_all();

private:
    // Adds the event with the given id, or the next one; returns its id (0: dropped, not after the last).
    std::uint64_t push(std::optional<std::uint64_t> given, std::string job, std::string data);

    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<job_event> ring_;
    std::uint64_t first_id_;
    std::uint64_t next_id_;
    std::uint64_t dropped_up_to_ = 0;  // the newest id that left the ring
    bool shared_ids_ = false;
    std::vector<std::weak_ptr<waiter>> waiters_;
};

}  // namespace quickthumb
