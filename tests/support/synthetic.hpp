#pragma once
// Synthetic test pictures, made in memory (encode them with the project's own encoders).
#include "quickthumb/image.hpp"

#include <algorithm>
#include <cstdint>

namespace qt_test {

// A smooth gradient, so encoders and resamplers have something to chew on; with 4 channels the
// alpha ramps too.
inline quickthumb::image::pixels gradient(int w, int h, int channels) {
    quickthumb::image::pixels p{w, h, channels, {}};
    p.data.resize(std::size_t(w) * h * channels);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            auto* px = &p.data[(std::size_t(y) * w + x) * channels];
            px[0] = static_cast<std::uint8_t>(x * 255 / std::max(w - 1, 1));
            px[1] = static_cast<std::uint8_t>(y * 255 / std::max(h - 1, 1));
            px[2] = 128;
            if (channels == 4) px[3] = static_cast<std::uint8_t>(55 + (x + y) * 200 / std::max(w + h - 2, 1));
        }
    return p;
}

}  // namespace qt_test
