// Output geometry (contain/cover/fill, no upscaling unless asked) and resampling (box + Lanczos-3).
#include "internal.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <new>
#include <stdexcept>

namespace quickthumb::image {
namespace {

int scaled(int v, double factor) {
    const double r = std::round(v * factor);
    return r >= double(INT_MAX) ? INT_MAX : std::max(1, static_cast<int>(r));
}

// The largest rectangle of the box's aspect ratio that fits in the source, at the source's scale.
size crop_to_aspect(int src_w, int src_h, int box_w, int box_h) {
    // Compare src_w/src_h with box_w/box_h without rounding.
    if (std::int64_t{src_w} * box_h > std::int64_t{src_h} * box_w)
        return {std::clamp(scaled(src_h, double(box_w) / box_h), 1, src_w), src_h};
    return {src_w, std::clamp(scaled(src_w, double(box_h) / box_w), 1, src_h)};
}

}  // namespace

size target_size(int src_w, int src_h, int box_w, int box_h, fit f, bool enlarge) noexcept {
    src_w = std::max(src_w, 1);
    src_h = std::max(src_h, 1);
    box_w = std::max(box_w, 0);
    box_h = std::max(box_h, 0);
    if (box_w == 0 && box_h == 0) return {src_w, src_h};  // nothing to fit: keep the size

    // With one side unconstrained, every mode agrees: scale to the given side.
    if (box_w == 0 || box_h == 0) {
        double factor = box_w ? double(box_w) / src_w : double(box_h) / src_h;
        if (!enlarge) factor = std::min(1.0, factor);
        size s{scaled(src_w, factor), scaled(src_h, factor)};
        if (box_w && (enlarge || box_w <= src_w)) s.width = box_w;  // exact despite rounding
        if (box_h && (enlarge || box_h <= src_h)) s.height = box_h;
        return s;
    }
    const double fx = double(box_w) / src_w;
    const double fy = double(box_h) / src_h;
    switch (f) {
        case fit::contain: {
            const double factor = enlarge ? std::min(fx, fy) : std::min({1.0, fx, fy});
            // The binding side lands exactly on the box even if the product rounds badly.
            size s{scaled(src_w, factor), scaled(src_h, factor)};
            if (factor == fx) s.width = box_w;
            if (factor == fy) s.height = box_h;
            return s;
        }
        case fit::fill:
            return enlarge ? size{box_w, box_h} : size{std::min(box_w, src_w), std::min(box_h, src_h)};
        case fit::cover:
            if (enlarge || std::max(fx, fy) <= 1.0) return {box_w, box_h};
            // The source is smaller than the box in some direction: no upscaling, only crop to its aspect.
            return crop_to_aspect(src_w, src_h, box_w, box_h);
    }
    return {src_w, src_h};
}

rect cover_crop(int src_w, int src_h, size target) noexcept {
    if (src_w <= 0 || src_h <= 0 || target.width <= 0 || target.height <= 0) return {0, 0, src_w, src_h};
    const size c = crop_to_aspect(src_w, src_h, target.width, target.height);
    return {(src_w - c.width) / 2, (src_h - c.height) / 2, c.width, c.height};
}

namespace {

// ---- resampling ----------------------------------------------------------------------------
// Like libvips' default (vips_resize): an integer box pre-shrink that leaves a factor of at least
// 2, then Lanczos-3 for the rest, separable, in the image's own (gamma-encoded) values and with
// alpha premultiplied. Streaming: box rows are made on demand into a ring of rows for the vertical
// filter. A box row is less than 4x the output width once the factor is 2 or more, so memory is
// O(output width x taps) plus one source row, whatever the source's height.

double lanczos3(double x) {
    x = std::abs(x);
    if (x < 1e-9) return 1.0;
    if (x >= 3.0) return 0.0;
    const double px = 3.14159265358979323846 * x;
    return 3.0 * std::sin(px) * std::sin(px / 3.0) / (px * px);
}

// The filter along one axis: output i = sum of weights[i*stride + t] * box sample first[i] + t.
struct axis_filter {
    int box = 1;           // integer pre-shrink factor
    int box_len = 0;       // samples after the pre-shrink
    int taps = 0;          // the widest output's tap count (the stride of weights)
    std::vector<int> first, count;
    std::vector<float> weights;
};

// `scale` is source samples per output sample: src_len / out_len for an exact fit.
axis_filter make_filter(int src_len, int out_len, double scale) {
    axis_filter f;
    f.box = std::max(1, static_cast<int>(std::floor(scale / 2.0)));
    f.box_len = (src_len + f.box - 1) / f.box;  // the last box may be partial
    const double residual = scale / f.box;
    const double offset = (src_len - out_len * scale) / 2.0;
    const double stretch = std::max(residual, 1.0);  // widen the kernel when reducing
    const double support = 3.0 * stretch;
    f.taps = static_cast<int>(std::ceil(2 * support)) + 2;
    f.first.resize(std::size_t(out_len));
    f.count.resize(std::size_t(out_len));
    f.weights.assign(std::size_t(out_len) * f.taps, 0.0f);
    std::vector<double> w(std::size_t(f.taps));
    for (int i = 0; i < out_len; ++i) {
        // Output i covers [offset + i*scale, offset + (i+1)*scale) of the source, the whole output
        // centred on the source when the scale does not fit exactly (as libvips does).
        const double centre = (offset + (i + 0.5) * scale) / f.box - 0.5;  // in box samples
        const int lo = static_cast<int>(std::ceil(centre - support));
        const int hi = static_cast<int>(std::floor(centre + support));
        // Edge samples repeat outwards: a tap beyond the edge adds to the edge sample's weight.
        const int first = std::clamp(lo, 0, f.box_len - 1);
        const int last = std::clamp(hi, 0, f.box_len - 1);
        std::fill(w.begin(), w.end(), 0.0);
        double total = 0;
        for (int j = lo; j <= hi; ++j) {
            const double v = lanczos3((j - centre) / stretch);
            w[std::size_t(std::clamp(j, 0, f.box_len - 1) - first)] += v;
            total += v;
        }
        f.first[std::size_t(i)] = first;
        f.count[std::size_t(i)] = last - first + 1;
        for (int t = 0; t <= last - first; ++t)
            f.weights[std::size_t(i) * f.taps + t] = static_cast<float>(total != 0 ? w[std::size_t(t)] / total : 0);
    }
    return f;
}

template <int CH>
class resampler {
public:
    resampler(const std::uint8_t* origin, std::size_t stride, rect crop, size to, double sx, double sy)
        : origin_(origin), stride_(stride), crop_(crop), to_(to), h_(make_filter(crop.width, to.width, sx)),
          v_(make_filter(crop.height, to.height, sy)), ring_rows_(v_.taps), row_len_(std::size_t(h_.box_len) * CH),
          ring_(std::size_t(ring_rows_) * row_len_), acc_(std::size_t(crop.width) * CH) {}

    // Vertical first, on whole box rows (contiguous, so the compiler vectorises it), then
    // horizontal on the output rows only: the per-pixel tap loop runs on to.height rows
    // instead of on every box row.
    void run(std::uint8_t* out) {
        std::vector<float> column(row_len_), row(std::size_t(to_.width) * CH);
        int next = 0;  // the next box row to make
        for (int y = 0; y < to_.height; ++y) {
            const int first = v_.first[std::size_t(y)], n = v_.count[std::size_t(y)];
            for (; next < first + n; ++next) box_row(next, &ring_[std::size_t(next % ring_rows_) * row_len_]);
            std::fill(column.begin(), column.end(), 0.0f);
            const float* w = &v_.weights[std::size_t(y) * v_.taps];
            for (int t = 0; t < n; ++t) {
                const float* src = &ring_[std::size_t((first + t) % ring_rows_) * row_len_];
                const float wt = w[t];
                float* c = column.data();
                for (std::size_t k = 0; k < row_len_; ++k) c[k] += wt * src[k];
            }
            filter_row(column.data(), row.data());
            store(row.data(), out + std::size_t(y) * to_.width * CH);
        }
    }

private:
    // Box row r: the source rows it covers, premultiplied and box-averaged, into dst (box_len pixels).
    void box_row(int r, float* dst) {
        const int y0 = r * v_.box, y1 = std::min(y0 + v_.box, crop_.height);
        std::fill(acc_.begin(), acc_.end(), 0.0f);
        for (int y = y0; y < y1; ++y) {
            const std::uint8_t* s = origin_ + std::size_t(y) * stride_;
            float* a = acc_.data();
            for (int x = 0; x < crop_.width; ++x, s += CH, a += CH) {
                if constexpr (CH == 4) {
                    const float alpha = s[3] * (1.0f / 255.0f);
                    a[0] += s[0] * alpha, a[1] += s[1] * alpha, a[2] += s[2] * alpha, a[3] += s[3];
                } else {
                    for (int k = 0; k < CH; ++k) a[k] += s[k];
                }
            }
        }
        const int bx = h_.box;
        for (int b = 0; b < h_.box_len; ++b) {
            const int x0 = b * bx, x1 = std::min(x0 + bx, crop_.width);
            const float norm = 1.0f / float((x1 - x0) * (y1 - y0));
            float sum[CH] = {};
            for (int x = x0; x < x1; ++x)
                for (int k = 0; k < CH; ++k) sum[k] += acc_[std::size_t(x) * CH + k];
            for (int k = 0; k < CH; ++k) dst[std::size_t(b) * CH + k] = sum[k] * norm;
        }
    }

    // The horizontal Lanczos pass: a vertically filtered box row into to.width pixels.
    void filter_row(const float* src_row, float* dst) const {
        for (int i = 0; i < to_.width; ++i) {
            const float* w = &h_.weights[std::size_t(i) * h_.taps];
            const float* s = &src_row[std::size_t(h_.first[std::size_t(i)]) * CH];
            float sum[CH] = {};
            for (int t = 0, n = h_.count[std::size_t(i)]; t < n; ++t, s += CH)
                for (int k = 0; k < CH; ++k) sum[k] += w[t] * s[k];
            for (int k = 0; k < CH; ++k) dst[std::size_t(i) * CH + k] = sum[k];
        }
    }

    static std::uint8_t to_u8(float v) {
        return static_cast<std::uint8_t>(v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<int>(v + 0.5f));
    }

    void store(const float* row, std::uint8_t* out) const {
        for (int i = 0; i < to_.width; ++i, row += CH, out += CH) {
            if constexpr (CH == 4) {
                const float a = row[3];
                if (a < 0.5f) {  // rounds to transparent: the colour does not matter, keep it defined
                    out[0] = out[1] = out[2] = out[3] = 0;
                    continue;
                }
                const float un = 255.0f / a;  // un-premultiply
                out[0] = to_u8(row[0] * un), out[1] = to_u8(row[1] * un), out[2] = to_u8(row[2] * un);
                out[3] = to_u8(a);
            } else {
                for (int k = 0; k < CH; ++k) out[k] = to_u8(row[k]);
            }
        }
    }

    const std::uint8_t* origin_;
    std::size_t stride_;
    rect crop_;
    size to_;
    axis_filter h_, v_;
    int ring_rows_;
    std::size_t row_len_;  // floats in a box row
    std::vector<float> ring_, acc_;
};

}  // namespace

pixels resize(const pixels& src, rect crop, size to) {
    return detail::resize_scaled(src, crop, to, 0, 0);
}

namespace detail {

pixels expand_grey(pixels p) {
    if (p.channels != 1) return p;
    pixels out{p.width, p.height, 3, {}};
    out.data.resize(p.data.size() * 3);
    std::uint8_t* d = out.data.data();
    for (const std::uint8_t v : p.data) *d++ = v, *d++ = v, *d++ = v;
    return out;
}

pixels resize_scaled(const pixels& src, rect crop, size to, double sx, double sy) {
    if (src.width <= 0 || src.height <= 0 || (src.channels != 1 && src.channels != 3 && src.channels != 4) ||
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

    if (!(sx > 0) || !std::isfinite(sx)) sx = double(crop.width) / to.width;
    if (!(sy > 0) || !std::isfinite(sy)) sy = double(crop.height) / to.height;
    if (crop.width == to.width && crop.height == to.height && sx == 1.0 && sy == 1.0) {  // a pure crop
        const std::size_t row = std::size_t(to.width) * src.channels;
        for (int y = 0; y < to.height; ++y) std::copy_n(origin + y * stride, row, out.data.data() + y * row);
        return out;
    }
    if (src.channels == 4)
        resampler<4>(origin, stride, crop, to, sx, sy).run(out.data.data());
    else if (src.channels == 3)
        resampler<3>(origin, stride, crop, to, sx, sy).run(out.data.data());
    else
        resampler<1>(origin, stride, crop, to, sx, sy).run(out.data.data());
    return out;
}

}  // namespace detail

}  // namespace quickthumb::image
