#pragma once
// The memory budget (--max-memory): bytes that jobs reserve, at their estimated peak
// (image::estimate_memory), before their decode starts, so that what the running jobs take never
// adds up past it. Reservations are granted first come, first served: a large job at the head
// waits for the memory it needs and smaller ones behind it wait too, or a stream of small jobs
// could starve it for ever. A request larger than the whole budget is the caller's to refuse
// (fits() is false): it would wait for ever. Thread-safe: the service's workers wait
// asynchronously on a thread pool, the CLI's threads block.
#include "quickthumb/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace quickthumb {

class memory_budget {
public:
    explicit memory_budget(std::uint64_t total);
    memory_budget(const memory_budget&) = delete;
    memory_budget& operator=(const memory_budget&) = delete;

    // Bytes held until it is destroyed or released; then the next waiters that fit are granted.
    class reservation {
    public:
        reservation() = default;
        reservation(reservation&& o) noexcept : budget_(o.budget_), bytes_(o.bytes_) { o.budget_ = nullptr; }
        reservation& operator=(reservation&& o) noexcept;
        ~reservation() { release(); }
        std::uint64_t bytes() const noexcept { return budget_ ? bytes_ : 0; }
        void release() noexcept;

    private:
        friend class memory_budget;
        reservation(memory_budget* b, std::uint64_t bytes) : budget_(b), bytes_(bytes) {}
        memory_budget* budget_ = nullptr;
        std::uint64_t bytes_ = 0;
    };

private:
    struct pending;

public:
    // A wait that another thread may call off (a DELETE of the job, a shutdown).
    class ticket {
    public:
        ticket() = default;

    private:
        friend class memory_budget;
        std::shared_ptr<pending> pending_;  // these two under the budget's mutex
        bool cancelled_ = false;
    };

    std::uint64_t total() const noexcept { return total_; }
    bool fits(std::uint64_t bytes) const noexcept { return bytes <= total_; }

    // Waits until `bytes` (<= total()) are free and the waiters before are served. Completes with
    // errc::cancelled when cancel(t) is called before it is granted (or was called already).
    boost::asio::awaitable<result<reservation>> async_reserve(std::uint64_t bytes, ticket& t);
    // The same, blocking the calling thread (no cancel).
    reservation reserve(std::uint64_t bytes);
    // Calls off the wait of `t`, from any thread; a later async_reserve with it is cancelled at once.
    void cancel(ticket& t);
    // Calls off every wait, and every later one (shutdown).
    void cancel_all();

    struct state {
        std::uint64_t total = 0, reserved = 0;
        std::size_t waiting = 0;     // reservations waiting now
        std::uint64_t waited = 0;    // reservations that had to wait, since the start
    };
    state snapshot() const;

private:
    void grant_locked(std::vector<std::shared_ptr<pending>>& woken);
    void give_back(std::uint64_t bytes) noexcept;

    const std::uint64_t total_;
    mutable std::mutex mutex_;
    std::uint64_t reserved_ = 0;
    std::uint64_t waited_ = 0;
    std::deque<std::shared_ptr<pending>> queue_;
    bool closed_ = false;
};

// How the resident set returns near idle after a burst of large jobs (measured, see README:
// glibc alone kept 70-90 MiB after one that peaked near 180, jemalloc 48, this 10):
// tune_allocator, at start, makes every block of 1 MiB or more a mapping of its own, given back
// when freed (glibc's default threshold rises to 32 MiB as large blocks come and go, and freed
// blocks below it stay in the arenas, pinned by small long-lived ones between them); then
// release_free_memory hands the arenas' free pages back (malloc_trim) after a large job and when
// the last running job ends.
void tune_allocator() noexcept;
void release_free_memory() noexcept;
inline constexpr std::uint64_t trim_after_bytes = 32ull << 20;

}  // namespace quickthumb
