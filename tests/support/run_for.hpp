#pragma once
// Runs a coroutine test to completion on its own io_context, failing if it does not finish
// within `timeout` (a hung await is a failure, not a hung test run).
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>

namespace qt_test {

template <class Awaitable>
void run_for(boost::asio::io_context& io, Awaitable test, std::chrono::milliseconds timeout) {
    bool finished = false;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, std::move(test), [&](std::exception_ptr ep) {
        finished = true;
        failure = ep;
    });
    io.restart();  // the context may have run out of work before
    io.run_for(timeout);
    if (!finished) FAIL("coroutine test did not finish within " << timeout.count() << " ms");
    if (failure) std::rethrow_exception(failure);
}

}  // namespace qt_test
