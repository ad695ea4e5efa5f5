#pragma once
// Runs blocking work (SQLite, fsync, decoding) on a thread pool and resumes the caller on its own
// executor, so the network thread never blocks.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>

namespace quickthumb {

template <class Executor, class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload(Executor ex, F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await boost::asio::co_spawn(
        ex, [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); }, boost::asio::use_awaitable);
}

}  // namespace quickthumb
