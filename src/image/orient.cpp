// EXIF orientation: turning stored pixels into upright ones, and mapping rectangles between the two.
#include "internal.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace quickthumb::image {
namespace {

// The stored pixel shown at upright (x, y), for an image stored as w x h.
//   1 identity        2 mirrored left-right   3 rotated 180      4 mirrored top-bottom
//   5 transposed      6 rotated 90 clockwise  7 transversed      8 rotated 90 anticlockwise
std::pair<int, int> stored_xy(int x, int y, int w, int h, int orientation) {
    switch (orientation) {
        case 2: return {w - 1 - x, y};
        case 3: return {w - 1 - x, h - 1 - y};
        case 4: return {x, h - 1 - y};
        case 5: return {y, x};
        case 6: return {y, h - 1 - x};
        case 7: return {w - 1 - y, h - 1 - x};
        case 8: return {w - 1 - y, x};
        default: return {x, y};
    }
}

}  // namespace

pixels apply_orientation(pixels p, int orientation) {
    if (orientation < 2 || orientation > 8) return p;
    if (p.width <= 0 || p.height <= 0 || p.channels <= 0 ||
        p.data.size() != std::size_t(p.width) * std::size_t(p.height) * std::size_t(p.channels))
        return p;  // malformed: nothing sensible to do, and nothing to read out of bounds
    const int w = p.width, h = p.height, ch = p.channels;
    pixels out;
    out.width = detail::swaps_sides(orientation) ? h : w;
    out.height = detail::swaps_sides(orientation) ? w : h;
    out.channels = ch;
    out.data.resize(p.data.size());
    const std::uint8_t* src = p.data.data();
    std::uint8_t* dst = out.data.data();
    const std::size_t stride = std::size_t(w) * ch;
    for (int y = 0; y < out.height; ++y) {
        // Along an output row the stored position moves by a fixed step: find it from two points.
        const auto [x0, y0] = stored_xy(0, y, w, h, orientation);
        std::ptrdiff_t step = 0;
        if (out.width > 1) {
            const auto [x1, y1] = stored_xy(1, y, w, h, orientation);
            step = (std::ptrdiff_t(y1) - y0) * std::ptrdiff_t(stride) + (std::ptrdiff_t(x1) - x0) * ch;
        }
        // Index arithmetic, not pointer stepping: a pointer one step before the buffer is UB.
        std::ptrdiff_t at = std::ptrdiff_t(y0) * std::ptrdiff_t(stride) + std::ptrdiff_t(x0) * ch;
        std::uint8_t* d = dst + std::size_t(y) * out.width * ch;
        if (ch == 3)
            for (int x = 0; x < out.width; ++x, at += step, d += 3) std::memcpy(d, src + at, 3);
        else if (ch == 4)
            for (int x = 0; x < out.width; ++x, at += step, d += 4) std::memcpy(d, src + at, 4);
        else
            for (int x = 0; x < out.width; ++x, at += step, d += ch) std::memcpy(d, src + at, std::size_t(ch));
    }
    return out;
}

namespace detail {

rect stored_rect(rect r, int stored_w, int stored_h, int orientation) {
    if (r.width <= 0 || r.height <= 0) return {0, 0, stored_w, stored_h};
    const auto [ax, ay] = stored_xy(r.x, r.y, stored_w, stored_h, orientation);
    const auto [bx, by] = stored_xy(r.x + r.width - 1, r.y + r.height - 1, stored_w, stored_h, orientation);
    const int x0 = std::min(ax, bx), y0 = std::min(ay, by);
    return {x0, y0, std::max(ax, bx) - x0 + 1, std::max(ay, by) - y0 + 1};
}

}  // namespace detail
}  // namespace quickthumb::image
