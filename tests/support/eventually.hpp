#pragma once
// Polls a real process until something holds (watching it is the only way to observe it); the
// limit only bounds a failure, which is the only case that waits for all of it.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

namespace qt_test {

template <class Pred>
void eventually(Pred pred, std::chrono::seconds limit, const char* what) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) FAIL("never happened: " << what);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace qt_test
