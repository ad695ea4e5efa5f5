#pragma once
// Lets Catch2 print quickthumb::result<T> in REQUIRE(r) (Boost's operator<< needs T printable).
#include "quickthumb/error.hpp"

#include <catch2/catch.hpp>

namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, quickthumb::error>> {
    static std::string convert(const boost::system::result<T, quickthumb::error>& r) {
        if (r) return "ok";
        return "error " + std::string(quickthumb::errc_name(r.error().code)) + ": " + r.error().message;
    }
};
}  // namespace Catch
