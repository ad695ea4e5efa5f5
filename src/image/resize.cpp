// Output geometry (contain/cover/fill, no upscaling unless asked) and resampling (box + Lanczos-3).
#include "internal.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>
#include <new>
#include <stdexcept>
#include <type_traits>

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

constexpr double pi = 3.14159265358979323846;

// Lanczos-3 at x = 3a/pi, from s = sin(a): 3 sin(pi x) sin(pi x / 3) / (pi x)^2, where
// sin(pi x) = sin(3a) = s (3 - 4 s^2). Even in a, as s^2 is.
double lanczos3(double a, double s) {
    const double x = std::abs(a) * (3.0 / pi);
    if (x < 1e-9) return 1.0;
    if (x >= 3.0) return 0.0;
    return s * s * (3.0 - 4.0 * s * s) / (3.0 * a * a);
}

// The filter along one axis: output i = sum of weights[i*stride + t] * box sample first[i] + t.
struct axis_filter {
    int box = 1;           // integer pre-shrink factor
    int box_len = 0;       // samples after the pre-shrink
    int taps = 0;          // the widest output's tap count (the stride of weights)
    int max_count = 0;     // the largest count
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
    const double step = pi / (3.0 * stretch);
    const double sin_step = std::sin(step), cos_step = std::cos(step);
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
        // The taps are evenly spaced, a = pi (j - centre) / (3 stretch): their sines by rotation
        // from the first one's, one sine and cosine per output rather than one per tap.
        const double a0 = pi * (lo - centre) / (3.0 * stretch);
        double sa = std::sin(a0), ca = std::cos(a0);
        for (int j = lo; j <= hi; ++j) {
            const double v = lanczos3(pi * (j - centre) / (3.0 * stretch), sa);
            const double sn = sa * cos_step + ca * sin_step;
            ca = ca * cos_step - sa * sin_step;
            sa = sn;
            w[std::size_t(std::clamp(j, 0, f.box_len - 1) - first)] += v;
            total += v;
        }
        f.first[std::size_t(i)] = first;
        f.count[std::size_t(i)] = last - first + 1;
        f.max_count = std::max(f.max_count, last - first + 1);
        for (int t = 0; t <= last - first; ++t)
            f.weights[std::size_t(i) * f.taps + t] = static_cast<float>(total != 0 ? w[std::size_t(t)] / total : 0);
    }
    return f;
}

// ---- kernels ---------------------------------------------------------------------------------
// The hot loops, written once on GCC vector types of W floats and compiled twice: for the x86-64
// baseline (SSE2, W = 4) and for AVX2+FMA (W = 8), picked at run time. resize.cpp is compiled
// with -ffp-contract=fast so that the AVX2 build fuses the multiply-adds.

template <int W>
struct vec {
    // Unaligned, and allowed to alias the floats it is loaded from.
    typedef float type __attribute__((vector_size(W * sizeof(float)), aligned(sizeof(float)), __may_alias__));
};

// out[k] = sum over t < n of w[t] * rows[t][k], for k < len (a multiple of 4 W): the vertical pass,
// each output vector accumulated in a register over all the taps and stored once.
template <int W>
[[gnu::always_inline]] inline void vertical_impl(const float* const* rows, const float* w, int n, float* out,
                                                 std::size_t len) {
    using V = typename vec<W>::type;
    for (std::size_t k = 0; k < len; k += 4 * W) {
        V a0 = {}, a1 = {}, a2 = {}, a3 = {};
        for (int t = 0; t < n; ++t) {
            const float* s = rows[t] + k;
            const V wt = V{} + w[t];
            a0 += wt * *reinterpret_cast<const V*>(s);
            a1 += wt * *reinterpret_cast<const V*>(s + W);
            a2 += wt * *reinterpret_cast<const V*>(s + 2 * W);
            a3 += wt * *reinterpret_cast<const V*>(s + 3 * W);
        }
        *reinterpret_cast<V*>(out + k) = a0;
        *reinterpret_cast<V*>(out + k + W) = a1;
        *reinterpret_cast<V*>(out + k + 2 * W) = a2;
        *reinterpret_cast<V*>(out + k + 3 * W) = a3;
    }
}

// The horizontal pass on a row of interleaved pixels. Output i's taps are the contiguous floats
// from src + first[i] * CH, multiplied lane by lane with its weights expanded to every channel and
// zero-padded to nvec vectors (hw, nvec * W floats per output). The channel of a lane repeats every
// P vectors, so P accumulators keep the channels apart until the per-channel sums, which are done
// in registers (through memory they stall on store forwarding). dst needs room for one more pixel
// plus a float: a pixel is written as a whole vector.
template <int CH, int W>
[[gnu::always_inline]] inline void horizontal_impl(const float* src, const float* hw, const int* first, int out_w,
                                                   int nvec, float* dst) {
    static_assert((CH == 1 || CH == 3 || CH == 4) && (W == 4 || W == 8));
    using V = typename vec<W>::type;
    typedef float v4 __attribute__((vector_size(16)));
    typedef int i4 __attribute__((vector_size(16)));
    constexpr int P = CH / std::gcd(CH, W);
    const int groups = nvec / P, rem = nvec % P;
    // (Macros rather than lambdas: a lambda taking or returning a 32-byte vector is not inlined
    // before the baseline build warns about its ABI.)
#define QT_LOAD(p) (*reinterpret_cast<const V*>(p))
#define QT_HALVES(v, lo, hi)                                                        \
    do {                                                                            \
        std::memcpy(&(lo), &(v), sizeof(v4));                                       \
        if constexpr (W == 8) std::memcpy(&(hi), reinterpret_cast<const char*>(&(v)) + sizeof(v4), sizeof(v4)); \
        else (hi) = v4{};                                                           \
    } while (0)
    for (int i = 0; i < out_w; ++i, dst += CH) {
        const float* s = src + std::size_t(first[i]) * CH;
        const float* w = hw + std::size_t(i) * nvec * W;
        if constexpr (P == 3) {  // CH == 3
            V a0{}, a1{}, a2{};
            for (int g = 0; g < groups; ++g, s += 3 * W, w += 3 * W) {
                a0 += QT_LOAD(w) * QT_LOAD(s);
                a1 += QT_LOAD(w + W) * QT_LOAD(s + W);
                a2 += QT_LOAD(w + 2 * W) * QT_LOAD(s + 2 * W);
            }
            if (rem > 0) a0 += QT_LOAD(w) * QT_LOAD(s);
            if (rem > 1) a1 += QT_LOAD(w + W) * QT_LOAD(s + W);
            // Four-lane pieces X, Y, Z with channels [0 1 2 0], [1 2 0 1], [2 0 1 2].
            v4 x, y, z;
            if constexpr (W == 8) {
                v4 l0, h0, l1, h1, l2, h2;
                QT_HALVES(a0, l0, h0);
                QT_HALVES(a1, l1, h1);
                QT_HALVES(a2, l2, h2);
                x = l0 + h1, y = h0 + l2, z = l1 + h2;
            } else {
                std::memcpy(&x, &a0, sizeof x), std::memcpy(&y, &a1, sizeof y), std::memcpy(&z, &a2, sizeof z);
            }
            v4 sum = x + __builtin_shuffle(y, i4{2, 0, 1, 3}) + __builtin_shuffle(z, i4{1, 2, 0, 3});
            const v4 xy = __builtin_shuffle(x, y, i4{3, 7, 0, 0});
            sum += __builtin_shuffle(xy, z, i4{0, 1, 7, 7});  // [x3 y3 z3 .]
            std::memcpy(dst, &sum, sizeof sum);  // lane 3 is junk, overwritten by the next pixel
        } else {
            V a{};
            for (int g = 0; g < nvec; ++g, s += W, w += W) a += QT_LOAD(w) * QT_LOAD(s);
            v4 lo, hi;
            QT_HALVES(a, lo, hi);
            v4 sum = lo + hi;  // channels [0 1 2 3] for CH 4, all one channel for CH 1
            if constexpr (CH == 4) {
                std::memcpy(dst, &sum, sizeof sum);
            } else {
                sum += __builtin_shuffle(sum, i4{2, 3, 0, 1});
                dst[0] = sum[0] + sum[1];
            }
        }
    }
#undef QT_LOAD
#undef QT_HALVES
}

// 8-bit samples to floats (a box row when there is no box pre-shrink).
[[gnu::always_inline]] inline void widen_impl(const std::uint8_t* s, float* d, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) d[k] = s[k];
}

// Floats to 8 bits, rounded and clamped (for pixels without alpha), W at a time. The 32-bit to
// 8-bit narrowing is a byte shuffle: GCC's own narrowing of a vector goes lane by lane.
typedef float f8v __attribute__((vector_size(32)));
typedef int i8v __attribute__((vector_size(32)));
typedef float f4v __attribute__((vector_size(16)));
typedef int i4v __attribute__((vector_size(16)));
typedef std::uint8_t b16v __attribute__((vector_size(16)));

template <int W>
[[gnu::always_inline]] inline void narrow_impl(const float* s, std::uint8_t* d, std::size_t n) {
    using F = std::conditional_t<W == 8, f8v, f4v>;
    using I = std::conditional_t<W == 8, i8v, i4v>;
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        b16v lo, hi;
        for (int j = 0; j < 8 / W; ++j) {
            F v = *reinterpret_cast<const typename vec<W>::type*>(s + k + j * W);
            v = v > 0.0f ? v : F{};
            v = v < 255.0f ? v : F{} + 255.0f;
            const I r = __builtin_convertvector(v + 0.5f, I);
            if constexpr (W == 8) {
                std::memcpy(&lo, &r, 16);
                std::memcpy(&hi, reinterpret_cast<const char*>(&r) + 16, 16);
            } else {
                std::memcpy(j == 0 ? &lo : &hi, &r, 16);
            }
        }
        const b16v b = __builtin_shuffle(lo, hi, b16v{0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0});
        std::memcpy(d + k, &b, 8);
    }
    for (; k < n; ++k) {
        const float v = s[k];
        d[k] = static_cast<std::uint8_t>(v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<int>(v + 0.5f));
    }
}

struct kernels {
    int lanes;
    void (*vertical)(const float* const*, const float*, int, float*, std::size_t);
    void (*horizontal[5])(const float*, const float*, const int*, int, int, float*);  // by channel count
    void (*widen)(const std::uint8_t*, float*, std::size_t);
    void (*narrow)(const float*, std::uint8_t*, std::size_t);
};

#define QT_KERNELS(ATTR, SUFFIX, W)                                                                           \
    ATTR void vertical_##SUFFIX(const float* const* rows, const float* w, int n, float* out, std::size_t len) { \
        vertical_impl<W>(rows, w, n, out, len);                                                                 \
    }                                                                                                          \
    template <int CH>                                                                                          \
    ATTR void horizontal_##SUFFIX(const float* src, const float* hw, const int* first, int out_w, int nvec,    \
                                  float* dst) {                                                                \
        horizontal_impl<CH, W>(src, hw, first, out_w, nvec, dst);                                              \
    }                                                                                                          \
    ATTR void widen_##SUFFIX(const std::uint8_t* s, float* d, std::size_t n) { widen_impl(s, d, n); }          \
    ATTR void narrow_##SUFFIX(const float* s, std::uint8_t* d, std::size_t n) { narrow_impl<W>(s, d, n); }        \
    const kernels kernels_##SUFFIX{W,                                                                          \
                                   vertical_##SUFFIX,                                                          \
                                   {nullptr, horizontal_##SUFFIX<1>, nullptr, horizontal_##SUFFIX<3>,          \
                                    horizontal_##SUFFIX<4>},                                                   \
                                   widen_##SUFFIX,                                                             \
                                   narrow_##SUFFIX};

QT_KERNELS(, base, 4)
#if defined(__GNUC__) && defined(__x86_64__)
QT_KERNELS(__attribute__((target("avx2,fma"))), avx2, 8)
#endif
#undef QT_KERNELS

const kernels& pick_kernels() {
#if defined(__GNUC__) && defined(__x86_64__)
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) return kernels_avx2;
#endif
    return kernels_base;
}

template <int CH>
class resampler final : public detail::row_consumer {
public:
    resampler(rect crop, size to, double sx, double sy, std::uint8_t* out)
        : k_(pick_kernels()), out_(out), crop_(crop), to_(to),
          h_(make_filter(crop.width, to.width, sx)), v_(make_filter(crop.height, to.height, sy)),
          ring_rows_(v_.taps), row_len_(std::size_t(h_.box_len) * CH),
          nvec_((h_.max_count * CH + k_.lanes - 1) / k_.lanes) {
        // A row holds the box samples, then zeros that the horizontal pass may read past the last
        // sample (with zero weights), rounded up to whole blocks of the vertical pass.
        row_stride_ = (row_len_ + std::size_t(nvec_) * k_.lanes + 63) / 64 * 64;
        ring_.assign(std::size_t(ring_rows_) * row_stride_, 0.0f);
        if (h_.box > 1 || v_.box > 1) acc_.resize(std::size_t(crop.width) * CH);
        // The horizontal weights, each repeated for the CH channels of its tap, zero-padded.
        hw_.assign(std::size_t(to.width) * nvec_ * k_.lanes, 0.0f);
        for (int i = 0; i < to.width; ++i) {
            float* d = &hw_[std::size_t(i) * nvec_ * k_.lanes];
            const float* w = &h_.weights[std::size_t(i) * h_.taps];
            for (int t = 0; t < h_.count[std::size_t(i)]; ++t)
                for (int c = 0; c < CH; ++c) d[t * CH + c] = w[t];
        }
        column_.resize(row_stride_);
        row_.resize(std::size_t(to_.width + 1) * CH + 1);
        rows_.resize(std::size_t(v_.taps));
    }

    // The crop's rows arrive one at a time; each completes at most one box row, which goes into
    // the ring, and then every output row whose taps are all in the ring is made. The ring holds
    // `taps` box rows: an output row not yet made needs none older than that (its first tap is
    // within taps of the newest box row), so the slot a new box row takes is free.
    void push(const std::uint8_t* s) override {
        if (in_ >= crop_.height) return;  // past the crop: not ours
        ++in_;
        if (h_.box == 1 && v_.box == 1) {
            widen_row(s, slot(made_));
        } else {
            if ((in_ - 1) % v_.box == 0) std::fill(acc_.begin(), acc_.end(), 0.0f);
            accumulate(s);
            if (in_ % v_.box != 0 && in_ != crop_.height) return;
            finish_box_row(in_ - 1 - (in_ - 1) % v_.box);
        }
        ++made_;
        emit();
    }

    bool done() const override { return y_ == to_.height; }

    // What the state above takes, for the memory estimate.
    static std::uint64_t state_bytes(rect crop, size to, double sx, double sy) {
        const kernels& k = pick_kernels();
        const axis_filter h = make_filter(crop.width, to.width, sx), v = make_filter(crop.height, to.height, sy);
        const std::uint64_t nvec = std::uint64_t(h.max_count * CH + k.lanes - 1) / k.lanes;
        const std::uint64_t stride = (std::uint64_t(h.box_len) * CH + nvec * k.lanes + 63) / 64 * 64;
        std::uint64_t floats = stride * (std::uint64_t(v.taps) + 1) + std::uint64_t(to.width) * nvec * k.lanes +
                               std::uint64_t(to.width + 1) * CH + 1;
        if (h.box > 1 || v.box > 1) floats += std::uint64_t(crop.width) * CH;
        floats += std::uint64_t(h.taps) * to.width + std::uint64_t(v.taps) * to.height;  // the filters' weights
        return floats * sizeof(float) + 2 * sizeof(int) * std::uint64_t(to.width + to.height);
    }

private:
    float* slot(int box_row) { return &ring_[std::size_t(box_row % ring_rows_) * row_stride_]; }

    // A source row as a box row (no pre-shrink): premultiplied floats.
    void widen_row(const std::uint8_t* s, float* dst) {
        if constexpr (CH == 4) {
            for (int x = 0; x < crop_.width; ++x, s += 4, dst += 4) {
                const float alpha = s[3] * (1.0f / 255.0f);
                dst[0] = s[0] * alpha, dst[1] = s[1] * alpha, dst[2] = s[2] * alpha, dst[3] = s[3];
            }
        } else {
            k_.widen(s, dst, row_len_);
        }
    }

    void accumulate(const std::uint8_t* s) {
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

    // The box row whose first source row is y0: the accumulated rows averaged over each box.
    void finish_box_row(int y0) {
        float* dst = slot(made_);
        const int y1 = std::min(y0 + v_.box, crop_.height);
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

    // Vertical first, on whole box rows (contiguous, so it vectorises), then horizontal on the
    // output rows only: the per-pixel tap loop runs on to.height rows instead of on every box row.
    void emit() {
        while (y_ < to_.height && v_.first[std::size_t(y_)] + v_.count[std::size_t(y_)] <= made_) {
            const int first = v_.first[std::size_t(y_)], n = v_.count[std::size_t(y_)];
            for (int t = 0; t < n; ++t) rows_[std::size_t(t)] = slot(first + t);
            k_.vertical(rows_.data(), &v_.weights[std::size_t(y_) * v_.taps], n, column_.data(), row_stride_);
            k_.horizontal[CH](column_.data(), hw_.data(), h_.first.data(), to_.width, nvec_, row_.data());
            store(row_.data(), out_ + std::size_t(y_) * to_.width * CH);
            ++y_;
        }
    }

    static std::uint8_t to_u8(float v) {
        return static_cast<std::uint8_t>(v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<int>(v + 0.5f));
    }

    void store(const float* row, std::uint8_t* out) const {
        if constexpr (CH == 4) {
            for (int i = 0; i < to_.width; ++i, row += CH, out += CH) {
                const float a = row[3];
                if (a < 0.5f) {  // rounds to transparent: the colour does not matter, keep it defined
                    out[0] = out[1] = out[2] = out[3] = 0;
                    continue;
                }
                const float un = 255.0f / a;  // un-premultiply
                out[0] = to_u8(row[0] * un), out[1] = to_u8(row[1] * un), out[2] = to_u8(row[2] * un);
                out[3] = to_u8(a);
            }
        } else {
            k_.narrow(row, out, std::size_t(to_.width) * CH);
        }
    }

    const kernels& k_;
    std::uint8_t* out_;
    rect crop_;
    size to_;
    axis_filter h_, v_;
    int ring_rows_;
    std::size_t row_len_;     // floats of samples in a box row
    int nvec_;                // vectors per output pixel in the horizontal pass
    std::size_t row_stride_ = 0;  // floats in a ring row, with the zero padding
    std::vector<float> ring_, acc_, hw_, column_, row_;
    std::vector<const float*> rows_;
    int in_ = 0;    // crop rows received
    int made_ = 0;  // box rows made
    int y_ = 0;     // output rows made
};

// A crop that already has the output's size: its rows are copied.
class row_copier final : public detail::row_consumer {
public:
    row_copier(int width, int height, int channels, std::uint8_t* out)
        : row_bytes_(std::size_t(width) * channels), height_(height), out_(out) {}
    void push(const std::uint8_t* row) override {
        if (y_ >= height_) return;
        std::memcpy(out_ + std::size_t(y_++) * row_bytes_, row, row_bytes_);
    }
    bool done() const override { return y_ == height_; }

private:
    std::size_t row_bytes_;
    int height_;
    std::uint8_t* out_;
    int y_ = 0;
};

bool is_copy(rect crop, size to, double sx, double sy) {
    return crop.width == to.width && crop.height == to.height && sx == 1.0 && sy == 1.0;
}

void normalise_scales(rect crop, size to, double& sx, double& sy) {
    if (!(sx > 0) || !std::isfinite(sx)) sx = double(crop.width) / to.width;
    if (!(sy > 0) || !std::isfinite(sy)) sy = double(crop.height) / to.height;
}

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

std::unique_ptr<row_consumer> make_consumer(int channels, rect crop, size to, double sx, double sy, pixels& out) {
    if ((channels != 1 && channels != 3 && channels != 4) || crop.width < 1 || crop.height < 1 || to.width < 1 ||
        to.height < 1)
        throw std::invalid_argument("image::make_consumer: malformed geometry");  // a caller bug
    normalise_scales(crop, to, sx, sy);
    out = pixels{to.width, to.height, channels, {}};
    out.data.resize(std::size_t(to.width) * std::size_t(to.height) * std::size_t(channels));
    std::uint8_t* o = out.data.data();
    if (is_copy(crop, to, sx, sy)) return std::make_unique<row_copier>(to.width, to.height, channels, o);
    if (channels == 4) return std::make_unique<resampler<4>>(crop, to, sx, sy, o);
    if (channels == 3) return std::make_unique<resampler<3>>(crop, to, sx, sy, o);
    return std::make_unique<resampler<1>>(crop, to, sx, sy, o);
}

std::uint64_t consumer_bytes(int channels, rect crop, size to, double sx, double sy) {
    normalise_scales(crop, to, sx, sy);
    if (is_copy(crop, to, sx, sy)) return 0;
    if (channels == 4) return resampler<4>::state_bytes(crop, to, sx, sy);
    if (channels == 3) return resampler<3>::state_bytes(crop, to, sx, sy);
    return resampler<1>::state_bytes(crop, to, sx, sy);
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

    pixels out;
    auto consumer = make_consumer(src.channels, crop, to, sx, sy, out);
    const std::size_t stride = std::size_t(src.width) * src.channels;
    const std::uint8_t* origin = src.data.data() + std::size_t(crop.y) * stride + std::size_t(crop.x) * src.channels;
    for (int y = 0; y < crop.height; ++y) consumer->push(origin + std::size_t(y) * stride);
    return out;
}

}  // namespace detail

}  // namespace quickthumb::image
