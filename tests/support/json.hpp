#pragma once
// Reading the service's JSON answers in tests.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>

namespace qt_test {

// The body as a JSON object; fails the test (showing the body) when it is not one.
inline boost::json::object parse_object(const std::string& body) {
    boost::json::value v;
    try {
        v = boost::json::parse(body);
    } catch (const std::exception&) {
        FAIL("not JSON: " << body);
    }
    REQUIRE(v.is_object());
    return v.as_object();
}

// A string value, or "" for anything else (null, a number).
inline std::string str(const boost::json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }

}  // namespace qt_test
