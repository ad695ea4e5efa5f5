// WebP with libwebp. A still image is decoded straight at the reduced size the pipeline needs
// (libwebp scales while it decodes, so a lossy image never exists at full size); the first frame
// of an animation is decoded whole and placed on its canvas.
#include "internal.hpp"

#include <webp/decode.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace quickthumb::image::detail {
namespace {

std::uint32_t le(const std::uint8_t* p, int n) {
    std::uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

error corrupt(std::string_view why) { return corrupt_error("WebP", why); }

// Decodes a still WebP, or a raw frame bitstream (ALPH + VP8, or VP8L), at `to` (its own size or less).
result<pixels> decode_still(std::span<const std::uint8_t> data, size to) {
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) return error{errc::internal, "libwebp version mismatch"};
    if (WebPGetFeatures(data.data(), data.size(), &config.input) != VP8_STATUS_OK)
        return corrupt("libwebp could not parse the header");
    const int w = config.input.width, h = config.input.height;
    if (to.width <= 0 || to.height <= 0 || to.width > w || to.height > h) to = {w, h};
    pixels out{to.width, to.height, config.input.has_alpha ? 4 : 3, {}};
    out.data.resize(std::size_t(out.width) * std::size_t(out.height) * std::size_t(out.channels));
    if (to.width != w || to.height != h) {
        config.options.use_scaling = 1;
        config.options.scaled_width = to.width;
        config.options.scaled_height = to.height;
    }
    config.output.colorspace = out.channels == 4 ? MODE_RGBA : MODE_RGB;  // straight alpha
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = out.data.data();
    config.output.u.RGBA.stride = out.width * out.channels;
    config.output.u.RGBA.size = out.data.size();
    const VP8StatusCode status = WebPDecode(data.data(), data.size(), &config);
    WebPFreeDecBuffer(&config.output);  // external memory: frees nothing of ours
    if (status != VP8_STATUS_OK) return corrupt("libwebp could not decode the image data");
    return out;
}

// The simple libwebp API refuses animations. Like GIF, we take the first frame: find the first
// ANMF chunk, decode its bitstream and place it on a transparent canvas at its offset.
result<pixels> decode_first_frame(std::span<const std::uint8_t> data, int canvas_w, int canvas_h) {
    std::size_t pos = 12;  // after "RIFF" size "WEBP"
    while (data.size() >= pos + 8) {
        const std::uint32_t len = le(data.data() + pos + 4, 4);
        if (data.size() - pos - 8 < len) break;
        const std::uint8_t* payload = data.data() + pos + 8;
        if (std::memcmp(data.data() + pos, "ANMF", 4) == 0) {
            if (len < 16) break;
            const int x = 2 * static_cast<int>(le(payload, 3)), y = 2 * static_cast<int>(le(payload + 3, 3));
            const int w = static_cast<int>(le(payload + 6, 3)) + 1, h = static_cast<int>(le(payload + 9, 3)) + 1;
            // Checked before decoding: the canvas size is what max_pixels was checked against.
            if (x + w > canvas_w || y + h > canvas_h) return corrupt("the first animation frame lies outside the canvas");
            // The frame's bitstream declares its own size, which decode_still allocates for:
            // checked first, or a few hundred bytes could allocate gigabytes past max_pixels (fuzz).
            WebPBitstreamFeatures ff{};
            if (WebPGetFeatures(payload + 16, len - 16u, &ff) != VP8_STATUS_OK || ff.width != w || ff.height != h)
                return corrupt("the first animation frame does not have its declared size");
            auto frame = decode_still({payload + 16, len - 16u}, {w, h});
            if (!frame) return frame.error();
            if (frame->width != w || frame->height != h)
                return corrupt("the first animation frame does not have its declared size");
            if (w == canvas_w && h == canvas_h) return frame;
            pixels canvas{canvas_w, canvas_h, 4, std::vector<std::uint8_t>(std::size_t(canvas_w) * canvas_h * 4, 0)};
            const int ch = frame->channels;
            for (int r = 0; r < h; ++r) {
                const std::uint8_t* src = frame->data.data() + std::size_t(r) * w * ch;
                std::uint8_t* dst = canvas.data.data() + (std::size_t(y + r) * canvas_w + x) * 4;
                for (int i = 0; i < w; ++i, src += ch, dst += 4) {
                    std::memcpy(dst, src, 3);
                    dst[3] = ch == 4 ? src[3] : 255;
                }
            }
            return canvas;
        }
        pos += 8 + std::size_t{len} + (len & 1);
    }
    return corrupt("animated image without a readable first frame");
}

// Reads a VP8L bitstream's bits, least significant first; past the end it reads zeros.
class bit_reader {
public:
    explicit bit_reader(std::span<const std::uint8_t> d) : d_(d) {}
    std::uint32_t bits(int n) {
        std::uint32_t v = 0;
        for (int i = 0; i < n; ++i, ++pos_)
            if (pos_ / 8 < d_.size() && (d_[pos_ / 8] >> (pos_ % 8) & 1)) v |= 1u << i;
        return v;
    }

private:
    std::span<const std::uint8_t> d_;
    std::size_t pos_ = 0;
};

// The chunk `fourcc` of the RIFF container (its payload), or an empty span.
std::span<const std::uint8_t> find_chunk(std::span<const std::uint8_t> data, const char* fourcc) {
    for (std::size_t pos = 12; data.size() >= pos + 8;) {
        const std::uint32_t len = le(data.data() + pos + 4, 4);
        if (data.size() - pos - 8 < len) break;
        if (std::memcmp(data.data() + pos, fourcc, 4) == 0) return data.subspan(pos + 8, len);
        pos += 8 + std::size_t{len} + (len & 1);
    }
    return {};
}

// A lossless image holds all its pixels as 32-bit words while it decodes; a colour-indexing
// transform packs 2, 4 or 8 pixels of at most 16, 4 or 2 colours into one. It is found when it
// leads (after a subtract-green, which has no data); after a transform with data, the width is
// taken as unpacked (an over-estimate, never an under-estimate).
int vp8l_packed_width(std::span<const std::uint8_t> vp8l, int width) {
    if (vp8l.size() < 5 || vp8l[0] != 0x2f) return width;
    bit_reader r(vp8l.subspan(5));
    while (r.bits(1)) {
        const std::uint32_t type = r.bits(2);
        if (type == 2) continue;     // subtract green
        if (type != 3) return width;  // predictor or cross-colour: a sub-image follows
        const std::uint32_t colours = r.bits(8) + 1;
        const int shift = colours > 16 ? 0 : colours > 4 ? 1 : colours > 2 ? 2 : 3;
        return (width + (1 << shift) - 1) >> shift;
    }
    return width;
}

}  // namespace

header_layout webp_layout(std::span<const std::uint8_t> data) {
    header_layout l;
    WebPBitstreamFeatures f{};
    if (WebPGetFeatures(data.data(), data.size(), &f) != VP8_STATUS_OK) return l;
    l.alpha = f.has_alpha;
    l.animated = f.has_animation;
    l.lossless = f.format == 2;
    l.channels = f.has_alpha || f.has_animation ? 4 : 3;
    l.whole_frame = l.lossless || l.alpha || l.animated;
    if (l.lossless) l.packed_width = vp8l_packed_width(find_chunk(data, "VP8L"), f.width);
    if (l.animated) {
        const auto anmf = find_chunk(data, "ANMF");
        if (anmf.size() >= 16) {
            l.frame_width = static_cast<int>(le(anmf.data() + 6, 3)) + 1;
            l.frame_height = static_cast<int>(le(anmf.data() + 9, 3)) + 1;
        }
    }
    return l;
}

size webp_decode_size(int w, int h, int min_w, int min_h) {
    if (min_w <= 0 && min_h <= 0) return {w, h};
    const double f = std::max(min_w > 0 ? double(min_w) / w : 0.0, min_h > 0 ? double(min_h) / h : 0.0);
    if (f >= 1.0) return {w, h};
    return {std::clamp(static_cast<int>(std::ceil(w * f)), 1, w), std::clamp(static_cast<int>(std::ceil(h * f)), 1, h)};
}

result<void> decode_webp_rows(std::span<const std::uint8_t> data, int min_w, int min_h, row_sink& sink) {
    WebPBitstreamFeatures features{};
    if (WebPGetFeatures(data.data(), data.size(), &features) != VP8_STATUS_OK)
        return corrupt("libwebp could not parse the header");
    result<pixels> px = error{errc::internal, "not decoded"};
    if (features.has_animation) {
        px = decode_first_frame(data, features.width, features.height);
    } else {
        px = decode_still(data, webp_decode_size(features.width, features.height, min_w, min_h));
    }
    if (!px) return px.error();
    return stream_rows(px->data.data(), px->width, px->height, px->channels, sink);
}

}  // namespace quickthumb::image::detail
