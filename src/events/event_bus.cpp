#include "quickthumb/event_bus.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace quickthumb {
namespace asio = boost::asio;

event_bus::event_bus(std::size_t capacity, std::uint64_t first_id, bool shared_ids)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      first_id_(std::max<std::uint64_t>(first_id, 1)),
      next_id_(first_id_),
      shared_ids_(shared_ids) {}

std::uint64_t event_bus::publish(std::string job, std::string data) { return push(std::nullopt, std::move(job), std::move(data)); }

void event_bus::publish_at(std::uint64_t id, std::string job, std::string data) { push(id, std::move(job), std::move(data)); }

std::uint64_t event_bus::push(std::optional<std::uint64_t> given, std::string job, std::string data) {
    std::vector<std::shared_ptr<waiter>> wake;
    std::uint64_t id = 0;
    {
        // The id is drawn and the event added under one lock: two publishers never draw the same.
        std::lock_guard lk(mutex_);
        id = given.value_or(next_id_);
        if (id < next_id_) return 0;
        next_id_ = id + 1;
        ring_.push_back(job_event{id, std::move(job), std::move(data)});
        if (ring_.size() > capacity_) {
            dropped_up_to_ = ring_.front().id;
            ring_.pop_front();
        }
        // Readers that went away are forgotten here, so the list stays as long as the live ones.
        std::erase_if(waiters_, [&](const std::weak_ptr<waiter>& w) {
            auto s = w.lock();
            if (!s) return true;
            wake.push_back(std::move(s));
            return false;
        });
    }
    for (auto& w : wake) {
        auto ex = w->timer.get_executor();
        asio::post(ex, [w = std::move(w)] { w->timer.cancel(); });
    }
    return id;
}

void event_bus::wake_all() {
    std::vector<std::shared_ptr<waiter>> wake;
    {
        std::lock_guard lk(mutex_);
        for (const auto& w : waiters_)
            if (auto s = w.lock()) wake.push_back(std::move(s));
    }
    for (auto& w : wake) {
        auto ex = w->timer.get_executor();
        asio::post(ex, [w = std::move(w)] { w->timer.cancel(); });
    }
}

event_bus::read_result event_bus::since(std::uint64_t after, std::size_t max, const std::string& job) const {
    read_result out;
    out.scanned_to = after;
    std::lock_guard lk(mutex_);
    // 0 means "from now on"; an id this run never gave (an earlier run's, or from the future) means
    // the reader cannot know what it missed.
    const bool foreign = after != 0 && (after + 1 < first_id_ || (!shared_ids_ && after >= next_id_));
    if (ring_.empty()) {
        out.missed = foreign;
        return out;
    }
    out.missed = foreign || (after != 0 && after < dropped_up_to_);
    if (foreign) after = 0;
    // Ids increase along the ring: the first one after `after`.
    std::size_t i = static_cast<std::size_t>(
        std::upper_bound(ring_.begin(), ring_.end(), after, [](std::uint64_t a, const job_event& e) { return a < e.id; }) -
        ring_.begin());
    for (; i < ring_.size() && out.events.size() < max; ++i) {
        if (job.empty() || ring_[i].job == job) out.events.push_back(ring_[i]);
        out.scanned_to = ring_[i].id;
    }
    return out;
}

std::uint64_t event_bus::last_id() const {
    std::lock_guard lk(mutex_);
    return next_id_ - 1;
}

std::shared_ptr<event_bus::waiter> event_bus::subscribe(asio::any_io_executor ex) {
    auto w = std::make_shared<waiter>(std::move(ex));
    std::lock_guard lk(mutex_);
    waiters_.push_back(w);
    return w;
}

}  // namespace quickthumb
