#pragma once
// Reading values out of a Prometheus text exposition (GET /metrics).
#include <catch2/catch.hpp>

#include <optional>
#include <sstream>
#include <string>

namespace qt_test {

// The value of one series ("name{labels}" exactly as exposed), or nullopt when it is absent.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

// The same, failing the test when it is absent.
inline double value(const std::string& text, const std::string& series) {
    auto v = sample(text, series);
    INFO("series " << series);
    REQUIRE(v);
    return *v;
}

}  // namespace qt_test
