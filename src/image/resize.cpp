// Output geometry (contain/cover, never upscale) and sRGB-correct resampling with stb_image_resize.
#include "quickthumb/image.hpp"

#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <stdexcept>

namespace quickthumb::image {
namespace {

int scaled(int v, double factor) { return std::max(1, static_cast<int>(std::lround(v * factor))); }

// The largest rectangle of the box's aspect ratio that fits in the source, at the source's scale.
size crop_to_aspect(int src_w, int src_h, int box_w, int box_h) {
    // Compare src_w/src_h with box_w/box_h without rounding.
    if (std::int64_t{src_w} * box_h > std::int64_t{src_h} * box_w)
        return {std::clamp(scaled(src_h, double(box_w) / box_h), 1, src_w), src_h};
    return {src_w, std::clamp(scaled(src_w, double(box_h) / box_w), 1, src_h)};
}

}  // namespace

size target_size(int src_w, int src_h, int box_w, int box_h, fit f) noexcept {
    src_w = std::max(src_w, 1);
    src_h = std::max(src_h, 1);
    box_w = std::max(box_w, 0);
    box_h = std::max(box_h, 0);
    if (box_w == 0 && box_h == 0) return {src_w, src_h};  // nothing to fit: keep the size

    // With one side unconstrained, contain and cover agree: scale to the given side.
    if (box_w == 0 || box_h == 0) {
        const double factor =
            std::min(1.0, box_w ? double(box_w) / src_w : double(box_h) / src_h);
        return {scaled(src_w, factor), scaled(src_h, factor)};
    }
    const double fx = double(box_w) / src_w;
    const double fy = double(box_h) / src_h;
    if (f == fit::contain) {
        const double factor = std::min({1.0, fx, fy});
        // The binding side lands exactly on the box even if the product rounds badly.
        size s{scaled(src_w, factor), scaled(src_h, factor)};
        if (factor == fx) s.width = box_w;
        if (factor == fy) s.height = box_h;
        return s;
    }
    if (std::max(fx, fy) <= 1.0) return {box_w, box_h};
    // The source is smaller than the box in some direction: no upscaling, only crop to its aspect.
    return crop_to_aspect(src_w, src_h, box_w, box_h);
}

rect cover_crop(int src_w, int src_h, size target) noexcept {
    if (src_w <= 0 || src_h <= 0 || target.width <= 0 || target.height <= 0) return {0, 0, src_w, src_h};
    const size c = crop_to_aspect(src_w, src_h, target.width, target.height);
    return {(src_w - c.width) / 2, (src_h - c.height) / 2, c.width, c.height};
}

pixels resize(const pixels& src, rect crop, size to) {
    if (src.width <= 0 || src.height <= 0 || (src.channels != 3 && src.channels != 4) ||
        src.data.size() != std::size_t(src.width) * std::size_t(src.height) * std::size_t(src.channels))
        throw std::invalid_argument("image::resize: malformed pixel buffer");  // a caller bug
    // Clamp the crop into the source; a bad rectangle is a caller bug, not a reason to read out of bounds.
    crop.x = std::clamp(crop.x, 0, std::max(src.width - 1, 0));
    crop.y = std::clamp(crop.y, 0, std::max(src.height - 1, 0));
    crop.width = std::clamp(crop.width, 1, src.width - crop.x);
    crop.height = std::clamp(crop.height, 1, src.height - crop.y);
    to.width = std::max(to.width, 1);
    to.height = std::max(to.height, 1);

    pixels out{to.width, to.height, src.channels, {}};
    out.data.resize(std::size_t(to.width) * std::size_t(to.height) * std::size_t(src.channels));
    const std::size_t stride = std::size_t(src.width) * src.channels;
    const std::uint8_t* origin = src.data.data() + std::size_t(crop.y) * stride + std::size_t(crop.x) * src.channels;

    if (crop.width == to.width && crop.height == to.height) {  // a pure crop: copy rows
        const std::size_t row = std::size_t(to.width) * src.channels;
        for (int y = 0; y < to.height; ++y) std::copy_n(origin + y * stride, row, out.data.data() + y * row);
        return out;
    }
    const int alpha = src.channels == 4 ? 3 : STBIR_ALPHA_CHANNEL_NONE;
    // flags 0: stb premultiplies by alpha while filtering, so transparent pixels do not bleed colour.
    if (!stbir_resize_uint8_srgb(origin, crop.width, crop.height, static_cast<int>(stride), out.data.data(),
                                 to.width, to.height, 0, src.channels, alpha, 0))
        throw std::bad_alloc();  // stb fails only when it cannot allocate its work buffers
    return out;
}

}  // namespace quickthumb::image
