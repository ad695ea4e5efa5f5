#pragma once
// Comparing decoded pictures in image tests: PSNR and the largest per-channel difference.
#include "quickthumb/image.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>

namespace qt_test {

// Over the colour channels; 99 for identical images.
inline double psnr(const quickthumb::image::pixels& a, const quickthumb::image::pixels& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    double se = 0;
    const std::size_t n = std::size_t(a.width) * a.height;
    for (std::size_t i = 0; i < n; ++i)
        for (int c = 0; c < 3; ++c) {
            const double d = double(a.data[i * a.channels + c]) - double(b.data[i * b.channels + c]);
            se += d * d;
        }
    if (se == 0) return 99.0;
    return 10.0 * std::log10(255.0 * 255.0 / (se / double(n * 3)));
}

// Over every channel; an image without alpha compares as opaque (a WebP encoder drops an alpha
// channel that is 255 everywhere, a PNG keeps it).
inline int max_abs_diff(const quickthumb::image::pixels& a, const quickthumb::image::pixels& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    const std::size_t n = std::size_t(a.width) * a.height;
    int m = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) {
            const int va = c < a.channels ? a.data[i * a.channels + c] : 255;
            const int vb = c < b.channels ? b.data[i * b.channels + c] : 255;
            m = std::max(m, std::abs(va - vb));
        }
    return m;
}

}  // namespace qt_test
