#include "quickthumb/redis_work_feed.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace quickthumb {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

redis_work_feed::redis_work_feed(asio::thread_pool& blocking, redis_job_store& db, redis_work_options opts)
    : db_(db),
      opts_(opts),
      strand_(asio::make_strand(blocking.get_executor())),
      channel_(blocking.get_executor(), opts.capacity),
      wake_(strand_) {}

void redis_work_feed::start() { asio::co_spawn(strand_, feed(), log::on_exit("work feed stopped")); }

void redis_work_feed::wake() {
    asio::post(strand_, [this] {
        pending_ = true;
        wake_.cancel();
    });
}

void redis_work_feed::on_change(const job_change& c) {
    // This instance's own changes only: a change read back from the stream may be older than
    // what this instance did since (a job released, taken again and running here now).
    if (!c.stored || (c.from_stream && !c.remote)) return;
    const bool left_processing = c.previous == job_state::processing && c.now.state != job_state::processing;
    const bool queued = c.now.state == job_state::queued && c.previous != job_state::queued;
    if (!left_processing && !queued) return;
    asio::post(strand_, [this, id = c.now.id, left_processing, local = !c.from_stream] {
        // Its entry was acknowledged (or moved) by the script that changed it.
        if (left_processing && local) held_.erase(id);
        pending_ = true;
        wake_.cancel();
    });
}

void redis_work_feed::on_taken(const std::string& id, bool started) {
    asio::post(strand_, [this, id, started] {
        if (auto it = held_.find(id); it != held_.end()) {
            if (started)
                it->second.running = true;
            else
                held_.erase(it);  // cancelled, or another instance's now; a store failure: reclaimed later
        }
        pending_ = true;
        wake_.cancel();
    });
}

void redis_work_feed::close() {
    asio::post(strand_, [this] {
        closed_ = true;
        wake_.cancel();
        channel_.close();
    });
}

asio::awaitable<bool> redis_work_feed::hand_over(std::vector<work_entry> entries) {
    for (auto& e : entries) {
        if (held_.contains(e.job)) continue;
        held_.emplace(e.job, held{e.entry, false});
        auto [ec] = co_await channel_.async_send(boost::system::error_code{}, e.job, asio::as_tuple(asio::use_awaitable));
        if (ec || closed_) co_return false;
    }
    co_return true;
}

asio::awaitable<void> redis_work_feed::feed() {
    const auto renew_every = std::max<std::chrono::milliseconds>(opts_.claim_idle / 3, std::chrono::milliseconds(10));
    const auto claim_every = std::max<std::chrono::milliseconds>(opts_.claim_idle / 2, std::chrono::milliseconds(50));
    auto next_renew = clock::now() + renew_every;
    auto next_claim = clock::now();  // at once: a dead instance may have left work
    auto next_promote = clock::now();
    // A restart under the same name: what this consumer held before is its own again. (Without
    // workers it is left unrenewed, for the others to claim.)
    if (opts_.workers > 0) {
        auto own = co_await db_.own_pending(std::max<std::size_t>(opts_.capacity + opts_.workers, 1));
        if (own && !own->empty()) {
            log::info("jobs this instance held before its restart are taken up again", "count=" + std::to_string(own->size()));
            if (!co_await hand_over(std::move(*own))) co_return;
        }
    }
    while (!closed_) {
        pending_ = false;
        bool ok = true;
        std::string failure;
        const auto now = clock::now();
        if (now >= next_renew) {
            std::vector<std::string> entries;
            for (const auto& [id, h] : held_) entries.push_back(h.entry);
            auto gone = co_await db_.refresh(std::move(entries));
            if (gone) {
                for (const auto& e : *gone)
                    std::erase_if(held_, [&](const auto& kv) { return kv.second.entry == e; });
                next_renew = clock::now() + renew_every;
            } else {
                ok = false;
                failure = gone.error().message;
            }
        }
        if (closed_) co_return;
        // One running and one waiting per worker: enough to keep the workers busy, and little held
        // back from the other instances (or left for them to claim when this one dies). An
        // instance without workers takes nothing.
        const std::size_t room_total = opts_.workers == 0 ? 0 : opts_.workers + std::min(opts_.capacity, opts_.workers);
        auto room = [&] { return held_.size() >= room_total ? std::size_t(0) : room_total - held_.size(); };
        if (ok && now >= next_claim) {
            // Without room (every worker busy, or none) the pass waits for the next turn.
            next_claim = now + claim_every;
            if (room() > 0) {
                auto claimed = co_await db_.claim_idle(opts_.claim_idle, room());
                if (claimed) {
                    if (!co_await hand_over(std::move(*claimed))) co_return;
                } else {
                    ok = false;
                    failure = claimed.error().message;
                    next_claim = now;
                }
            }
        }
        if (ok && now >= next_promote) {
            auto p = co_await db_.promote_due(now_ms());
            if (p) {
                // Another instance's delayed jobs are due too: look at least once a second.
                auto wait = std::chrono::milliseconds(1000);
                if (p->next_due > 0) wait = std::min(wait, std::chrono::milliseconds(std::max<std::int64_t>(p->next_due - now_ms(), 1)));
                next_promote = clock::now() + wait;
            } else {
                ok = false;
                failure = p.error().message;
            }
        }
        bool full = false;
        if (ok && room() > 0) {
            const auto want = room();
            auto got = co_await db_.take(want);
            if (got) {
                full = got->size() == want;
                if (!co_await hand_over(std::move(*got))) co_return;
            } else {
                ok = false;
                failure = got.error().message;
            }
        }
        if (closed_) co_return;
        if (!ok) {
            if (!failing_) log::warn("work feed cannot reach the job store; retrying every second", "error=\"" + failure + "\"");
            failing_ = true;
            wake_.expires_after(std::chrono::seconds(1));
            co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (failing_) log::info("work feed reaches the job store again");
        failing_ = false;
        if (full && room() > 0) continue;  // there may be more right away
        if (pending_) continue;
        auto until = std::min({next_renew, next_claim, next_promote, clock::now() + opts_.poll});
        wake_.expires_at(until);
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace quickthumb
