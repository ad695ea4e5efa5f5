#include "quickthumb/redis_event_feed.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace quickthumb {
namespace asio = boost::asio;

redis_event_feed::redis_event_feed(asio::any_io_executor ex, redis_job_store& db, jobs_service& jobs, std::string after)
    : db_(db), jobs_(jobs), after_(std::move(after)), pause_(ex) {}

void redis_event_feed::start() { asio::co_spawn(pause_.get_executor(), run(), log::on_exit("event feed stopped")); }

void redis_event_feed::stop() {
    asio::post(pause_.get_executor(), [this] {
        stopping_ = true;
        pause_.cancel();
    });
}

asio::awaitable<void> redis_event_feed::run() {
    using clock = std::chrono::steady_clock;
    const std::string& me = db_.options().consumer;
    bool failing = false;
    auto next_count = clock::now();
    while (!stopping_) {
        auto got = co_await db_.wait_events(after_, 512, std::chrono::milliseconds(2000));
        if (stopping_) co_return;
        if (!got) {
            if (!failing) log::warn("event feed cannot read the events stream; retrying every second",
                                    "error=\"" + got.error().message + "\"");
            failing = true;
            pause_.expires_after(std::chrono::seconds(1));
            co_await pause_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (failing) log::info("event feed reads the events stream again");
        failing = false;
        for (auto& ev : *got) {
            job_change c = std::move(ev.change);
            c.event = event_number(ev.id);
            c.from_stream = true;
            c.remote = ev.by != me;
            after_ = ev.id;
            if (!c.now.id.empty()) jobs_.observe(std::move(c));
        }
        if (clock::now() >= next_count) {
            next_count = clock::now() + std::chrono::seconds(5);
            if (auto n = co_await db_.count(job_state::queued)) jobs_.resync_waiting(*n);
        }
    }
}

}  // namespace quickthumb
