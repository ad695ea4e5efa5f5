#pragma once
// Synthetic test pictures, made in memory (encode them with the project's own encoders).
#include "quickthumb/image.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

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

// A synthetic photo-like JPEG file, encoded with the project's own encoder.
inline std::string synthetic_jpeg(int w, int h, int quality = 90) {
    quickthumb::image::pixels p{w, h, 3, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            auto* px = &p.data[(static_cast<std::size_t>(y) * w + x) * 3];
            px[0] = static_cast<std::uint8_t>(x * 255 / w);
            px[1] = static_cast<std::uint8_t>(y * 255 / h);
            px[2] = static_cast<std::uint8_t>((x + y) % 256);
        }
    auto enc = quickthumb::image::encode_jpeg(p, quality);
    if (!enc) throw std::runtime_error("synthetic_jpeg: " + enc.error().message);
    return {enc->begin(), enc->end()};
}

// Random noise: the slowest kind of JPEG to decode and encode (nothing compresses), for jobs
// that must still be running when the test acts on them.
inline std::string noise_jpeg(int w, int h, unsigned seed = 1) {
    quickthumb::image::pixels p{w, h, 3, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
    std::mt19937 rng(seed);
    for (auto& v : p.data) v = static_cast<std::uint8_t>(rng());
    auto enc = quickthumb::image::encode_jpeg(p, 95);
    if (!enc) throw std::runtime_error("noise_jpeg: " + enc.error().message);
    return {enc->begin(), enc->end()};
}

}  // namespace qt_test
