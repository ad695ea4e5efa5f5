// offload and the threads that may block (offload.hpp): which threads are marked, and where the
// work then runs.
#include "quickthumb/offload.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <thread>

using namespace quickthumb;
namespace asio = boost::asio;

namespace {

// Where the work ran, seen from a coroutine started on `on`, which asks `other` to run it.
struct placement {
    std::thread::id caller;
    std::thread::id work;
};

placement place(asio::thread_pool& on, asio::thread_pool& other) {
    auto fut = asio::co_spawn(
        on,
        [&]() -> asio::awaitable<placement> {
            placement p{std::this_thread::get_id(), {}};
            p.work = co_await offload_unless_blocking_allowed(other.get_executor(),
                                                              [] { return std::this_thread::get_id(); });
            co_return p;
        },
        asio::use_future);
    return fut.get();
}

}  // namespace

TEST_CASE("let_threads_block marks every thread of the pool and no other", "[worker]") {
    constexpr std::size_t threads = 3;
    asio::thread_pool pool(threads);
    let_threads_block(pool, threads);
    CHECK_FALSE(this_thread_may_block());

    // Tasks that hold their thread until all have started run on distinct threads: all of them.
    std::latch all_started(threads);
    std::atomic<int> marked{0};
    for (std::size_t i = 0; i < threads; ++i)
        asio::post(pool, [&] {
            if (this_thread_may_block()) ++marked;
            all_started.arrive_and_wait();
        });
    pool.join();
    CHECK(marked == static_cast<int>(threads));
}

TEST_CASE("blocking work runs in place on a thread that may block, elsewhere otherwise", "[worker]") {
    asio::thread_pool marked(1), unmarked(1), other(1);
    let_threads_block(marked, 1);

    const auto in_place = place(marked, other);
    CHECK(in_place.work == in_place.caller);

    const auto handed_off = place(unmarked, other);
    CHECK(handed_off.work != handed_off.caller);
}
