#pragma once
// Image files of every format and layout the decoders care about, written with the reference
// libraries (libjpeg-turbo, libspng, libwebp, giflib, stb_image_write), for tests that need
// files beyond what the engine's own encoders write: progressive JPEG, interlaced or 16-bit PNG,
// lossless WebP, interlaced GIF, BMP.
#include "quickthumb/image.hpp"

#include <cstdint>
#include <vector>

namespace qt_test {

using bytes = std::vector<std::uint8_t>;

// Photo-like pixels: smooth gradients with mild noise (so encoders neither collapse nor explode).
quickthumb::image::pixels photo_like(int w, int h, int channels, unsigned seed = 1);

struct jpeg_spec {
    int quality = 85;
    bool progressive = false;
    bool grey = false;       // written as one component
    int orientation = 0;     // 1..8: an EXIF block with that Orientation; 0: none
    bool scan_bomb = false;  // progressive, every AC coefficient of every component in a scan of its own, in
                             // 4 refinement steps: 757 scans (a valid file that takes minutes to decode)
};
bytes jpeg_file(const quickthumb::image::pixels& p, const jpeg_spec& spec = {});

struct png_spec {
    bool interlaced = false;
    bool sixteen_bit = false;
};
// RGB, RGBA or grey (1 channel) pixels as a PNG of that colour type.
bytes png_file(const quickthumb::image::pixels& p, const png_spec& spec = {});

struct webp_spec {
    bool lossless = false;
    int quality = 80;
};
bytes webp_file(const quickthumb::image::pixels& p, const webp_spec& spec = {});

bytes bmp_file(const quickthumb::image::pixels& p);

// A GIF of the pixels' red channel through the ramp palette (index = red).
bytes gif_file(const quickthumb::image::pixels& p, bool interlaced = false);

}  // namespace qt_test
