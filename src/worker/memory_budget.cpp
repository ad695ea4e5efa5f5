#include "quickthumb/memory_budget.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>

#include <condition_variable>
#include <stdexcept>

namespace quickthumb {
namespace asio = boost::asio;

// A waiter: granted (under the mutex) by whoever frees memory, then woken outside the mutex.
struct memory_budget::pending {
    std::uint64_t bytes = 0;
    bool granted = false;
    std::function<void(bool granted)> wake;
};

memory_budget::memory_budget(std::uint64_t total) : total_(total) {}

memory_budget::reservation& memory_budget::reservation::operator=(reservation&& o) noexcept {
    if (this != &o) {
        release();
        budget_ = o.budget_;
        bytes_ = o.bytes_;
        o.budget_ = nullptr;
    }
    return *this;
}

void memory_budget::reservation::release() noexcept {
    if (!budget_) return;
    auto* b = budget_;
    budget_ = nullptr;
    b->give_back(bytes_);
}

void memory_budget::grant_locked(std::vector<std::shared_ptr<pending>>& woken) {
    while (!queue_.empty() && reserved_ + queue_.front()->bytes <= total_) {
        auto p = std::move(queue_.front());
        queue_.pop_front();
        reserved_ += p->bytes;
        p->granted = true;
        woken.push_back(std::move(p));
    }
}

void memory_budget::give_back(std::uint64_t bytes) noexcept {
    std::vector<std::shared_ptr<pending>> woken;
    {
        std::lock_guard lk(mutex_);
        reserved_ -= std::min(bytes, reserved_);
        grant_locked(woken);
    }
    for (auto& p : woken) p->wake(true);
}

asio::awaitable<result<memory_budget::reservation>> memory_budget::async_reserve(std::uint64_t bytes, ticket& t) {
    if (!fits(bytes)) throw std::logic_error("memory_budget: a reservation larger than the whole budget");
    const error cancelled{errc::cancelled, "stopped while waiting for memory"};
    using channel = asio::experimental::concurrent_channel<void(boost::system::error_code)>;
    auto wakeup = std::make_shared<channel>(co_await asio::this_coro::executor, 1);
    {
        std::lock_guard lk(mutex_);
        if (t.cancelled_ || closed_) co_return cancelled;
        if (queue_.empty() && reserved_ + bytes <= total_) {
            reserved_ += bytes;
            co_return reservation(this, bytes);
        }
        auto p = std::make_shared<pending>();
        p->bytes = bytes;
        p->wake = [wakeup](bool granted) {
            wakeup->try_send(granted ? boost::system::error_code{} : asio::error::operation_aborted);
        };
        queue_.push_back(p);
        t.pending_ = std::move(p);
        ++waited_;
    }
    auto [ec] = co_await wakeup->async_receive(asio::as_tuple(asio::use_awaitable));
    {
        std::lock_guard lk(mutex_);
        t.pending_.reset();
    }
    if (ec) co_return cancelled;
    co_return reservation(this, bytes);
}

memory_budget::reservation memory_budget::reserve(std::uint64_t bytes) {
    if (!fits(bytes)) throw std::logic_error("memory_budget: a reservation larger than the whole budget");
    std::unique_lock lk(mutex_);
    if (queue_.empty() && reserved_ + bytes <= total_) {
        reserved_ += bytes;
        return reservation(this, bytes);
    }
    if (closed_) throw std::runtime_error("the memory budget is closed");
    std::condition_variable cv;
    bool done = false, granted = false;
    auto p = std::make_shared<pending>();
    p->bytes = bytes;
    p->wake = [&](bool ok) {
        std::lock_guard wake_lock(mutex_);
        done = true;
        granted = ok;
        cv.notify_one();
    };
    queue_.push_back(p);
    ++waited_;
    cv.wait(lk, [&] { return done; });
    if (!granted) throw std::runtime_error("the memory budget is closed");
    return reservation(this, bytes);
}

void memory_budget::cancel(ticket& t) {
    std::vector<std::shared_ptr<pending>> woken;
    std::shared_ptr<pending> called_off;
    {
        std::lock_guard lk(mutex_);
        t.cancelled_ = true;
        if (!t.pending_ || t.pending_->granted) return;
        called_off = t.pending_;
        std::erase(queue_, called_off);
        grant_locked(woken);  // it may have been the head that held the others back
    }
    called_off->wake(false);
    for (auto& p : woken) p->wake(true);
}

void memory_budget::cancel_all() {
    std::deque<std::shared_ptr<pending>> called_off;
    {
        std::lock_guard lk(mutex_);
        closed_ = true;
        called_off.swap(queue_);
    }
    // A blocking reserve() called off this way throws (the CLI, its only user, never closes).
    for (auto& p : called_off) p->wake(false);
}

memory_budget::state memory_budget::snapshot() const {
    std::lock_guard lk(mutex_);
    return {total_, reserved_, queue_.size(), waited_};
}

void tune_allocator() noexcept { ::mallopt(M_MMAP_THRESHOLD, 1 << 20); }

void release_free_memory() noexcept { ::malloc_trim(0); }

}  // namespace quickthumb
