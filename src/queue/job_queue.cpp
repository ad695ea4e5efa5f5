#include "quickthumb/job_queue.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace quickthumb {
namespace asio = boost::asio;

job_queue::job_queue(asio::thread_pool& blocking, job_store& db, std::size_t capacity)
    : db_(db),
      strand_(asio::make_strand(blocking.get_executor())),
      channel_(blocking.get_executor(), capacity),
      wake_(strand_),
      capacity_(capacity) {}

void job_queue::start() { asio::co_spawn(strand_, feed(), log::on_exit("feeder stopped")); }

void job_queue::on_change(const job_change& c) {
    if (c.stored && c.now.state == job_state::queued && c.previous != job_state::queued) wake();
}

void job_queue::wake() {
    asio::post(strand_, [this] {
        pending_ = true;
        wake_.cancel();
    });
}

void job_queue::on_taken(const std::string& id, bool) {
    asio::post(strand_, [this, id] {
        handed_.erase(id);
        if (scanning_) taken_during_scan_.insert(id);
        // A scan may have stopped short because everything it saw was handed out: look again.
        pending_ = true;
        wake_.cancel();
    });
}

void job_queue::close() {
    asio::post(strand_, [this] {
        closed_ = true;
        wake_.cancel();
        channel_.close();
    });
}

asio::awaitable<void> job_queue::feed() {
    while (!closed_) {
        // Cleared before the scan: a notify that lands while we are suspended below sets it again.
        pending_ = false;
        const auto now = now_ms();
        // Enough rows to find `capacity_` that are not already handed out.
        taken_during_scan_.clear();
        scanning_ = true;
        auto batch = co_await db_.due(now, static_cast<int>(capacity_ + handed_.size()));
        scanning_ = false;
        if (closed_) co_return;
        if (!batch) {
            // The store failed a read (a failing disk): look again in a second, or on a notify.
            log::warn("feeder could not read the queue", "error=\"" + batch.error().message + "\"");
            if (!pending_) {
                wake_.expires_after(std::chrono::seconds(1));
                co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            continue;
        }
        bool sent = false;
        for (auto& id : *batch) {
            if (handed_.contains(id) || taken_during_scan_.contains(id)) continue;
            handed_.insert(id);
            auto [ec] = co_await channel_.async_send(boost::system::error_code{}, std::move(id),
                                                     asio::as_tuple(asio::use_awaitable));
            if (ec || closed_) co_return;  // channel closed: shutting down
            sent = true;
        }
        if (!sent && !pending_) {
            // Nothing new: sleep until a notify, or until the next retry is due.
            const auto next = co_await db_.next_due_after(now);
            // A notify or a close that landed during the read must not be slept through.
            if (pending_ || closed_) continue;
            if (!next)
                wake_.expires_after(std::chrono::seconds(1));  // a failed read: look again soon
            else if (*next)
                wake_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(**next - now_ms(), 1)));
            else
                wake_.expires_at(asio::steady_timer::time_point::max());
            co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
}

}  // namespace quickthumb
