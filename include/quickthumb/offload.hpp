#pragma once
// Runs blocking work (SQLite, fsync, decoding) on a thread pool and resumes the caller on its own
// executor, so the network thread never blocks.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <type_traits>

namespace quickthumb {

template <class Executor, class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload(Executor ex, F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await boost::asio::co_spawn(
        ex, [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); }, boost::asio::use_awaitable);
}

// Threads that exist to block (the image workers, which decode for milliseconds anyway) are
// marked once; blocking work asked for on one of them runs right there instead of being handed to
// another pool and back: two thread switches fewer for each file a job reads or writes.
// let_threads_block returns once each of the pool's THREADS threads is marked (THREADS must be
// the pool's thread count, or it waits forever).
void let_threads_block(boost::asio::thread_pool& pool, std::size_t threads);
bool this_thread_may_block() noexcept;

// offload, or the call itself where this thread may block.
template <class Executor, class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload_unless_blocking_allowed(Executor ex, F f) {
    if (this_thread_may_block()) co_return f();
    co_return co_await offload(ex, std::move(f));
}

}  // namespace quickthumb
