// Which threads may block: see let_threads_block in offload.hpp.
#include "quickthumb/offload.hpp"

#include <boost/asio/post.hpp>

#include <latch>
#include <memory>

namespace quickthumb {

namespace {
thread_local bool may_block = false;
}

void let_threads_block(boost::asio::thread_pool& pool, std::size_t threads) {
    // Each task holds its thread until all have started, so every thread gets exactly one. Shared:
    // a task may still be leaving the latch when this call returns.
    auto all = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(threads) + 1);
    for (std::size_t i = 0; i < threads; ++i)
        boost::asio::post(pool, [all] {
            may_block = true;
            all->arrive_and_wait();
        });
    all->arrive_and_wait();
}

bool this_thread_may_block() noexcept { return may_block; }

}  // namespace quickthumb
