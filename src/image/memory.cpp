// The memory a thumbnail request takes at its peak, estimated from the header alone, so that a
// caller can reserve it before the decode starts (the worker pool's memory budget, the CLI's).
//
// The model follows what make_thumbnails holds, phase by phase:
//   input bytes, throughout (the caller's buffer or mapping);
//   decoding: the decoder's own state (a few rows, or the whole frame when it must hold one, see
//     header_layout) + every output's resampler and pixels, all filled at once;
//   then, one output after the other: the outputs not yet encoded, this one's conversions
//     (grey to RGB, orientation) and its encoder, and the encoded bytes of the ones before.
// Each term is an upper bound of what the library in question allocates for that shape (read from
// their sources: libjpeg-turbo, libspng, giflib, libwebp, stb_image), plus a fixed allowance for
// the small allocations of each library. tests/test_memory_estimate.cpp checks the estimate
// against the measured heap peak for each format and shape: never below it, within 2x of it.
#include "internal.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

namespace quickthumb::image {
namespace {

using u64 = std::uint64_t;

constexpr u64 kib = 1024, mib = 1024 * 1024;

u64 area(int w, int h) { return u64(std::max(w, 0)) * u64(std::max(h, 0)); }

// The stored (not yet oriented) size the decoder produces for a decode of at least `hint` (upright).
size decoded_size(const header_info& h, size hint) {
    const bool swap = detail::swaps_sides(h.orientation);
    const int w = swap ? h.height : h.width, hh = swap ? h.width : h.height;
    const int min_w = swap ? hint.height : hint.width, min_h = swap ? hint.width : hint.height;
    if (h.fmt == format::jpeg) {
        const int d = detail::jpeg_scale_denom(w, hh, min_w, min_h);
        return {(w + d - 1) / d, (hh + d - 1) / d};
    }
    if (h.fmt == format::webp && !h.layout.animated) return detail::webp_decode_size(w, hh, min_w, min_h);
    return {w, hh};
}

// What the decoder holds beside the rows it hands on, for an image stored as w x h decoded at `out`.
u64 decoder_bytes(const header_info& hd, int w, int h, size out) {
    const header_layout& l = hd.layout;
    const u64 ch = u64(l.channels);
    switch (hd.fmt) {
        case format::jpeg: {
            // libjpeg-turbo: a row group of each component at the output scale for the upsampler
            // and colour converter (with context rows), the row we hand on, a CMYK row; a file of
            // several scans keeps every coefficient.
            const u64 comps = u64(std::max(l.components, 1));
            u64 b = 64 * kib + u64(out.width) * (comps * 48 + ch + 4);
            if (l.whole_frame) b += u64(l.coefficient_bytes);
            return b;
        }
        case format::png: {
            // libspng: two scanlines of the file's width (up to 8 bytes a pixel), a deinterlace row,
            // zlib's inflate state; our row; an interlaced image whole.
            const u64 decoded = (l.channels == 1 && l.bit_depth == 16) ? 3 : ch;
            const u64 scanline = u64(w) * u64(l.bit_depth == 16 ? 8 : 4) + 64;
            u64 b = 64 * kib + 2 * scanline + 2 * u64(w) * decoded + u64(w);
            if (l.whole_frame) b += area(w, h) * decoded;
            return b;
        }
        case format::gif: {
            // giflib's LZW tables, a line of the frame, the canvas row; an interlaced frame's
            // visible indexes.
            const int fw = std::min(l.frame_width, w), fh = std::min(l.frame_height, h);
            u64 b = 32 * kib + u64(std::max(l.frame_width, 0)) + 4 * u64(w);
            if (l.whole_frame) b += area(fw, fh);
            return b;
        }
        case format::webp: {
            // Our buffer at the decode size; libwebp's rescaler (when scaling) and its own state:
            // a lossy decoder keeps a few macroblock rows, a full alpha plane and, for compressed
            // alpha, its lossless decode; a lossless one keeps every (packed) pixel as a word.
            u64 b = 64 * kib + area(out.width, out.height) * ch + 48 * u64(out.width);
            if (l.animated) {
                const u64 frame = area(l.frame_width, l.frame_height), canvas = area(w, h);
                // The first frame as decoded (lossless at worst), our copy of it, the canvas.
                return b + frame * (4 + 4 + 2) + u64(l.frame_width) * 17 * 4 + canvas * 4;
            }
            if (l.lossless) {
                const u64 packed = u64(l.packed_width > 0 ? l.packed_width : w);
                return b + packed * u64(h) * 4 + u64(w) * 17 * 4 + area(w, h) / 4;
            }
            b += u64(w) * 64 * 3 / 2;  // macroblock rows of Y, U, V and the filter's context
            if (l.alpha) b += area(w, h) * 9 / 4;  // the plane, its lossless decode and filter rows
            return b;
        }
        case format::bmp: return 16 * kib + area(w, h) * ch;  // stb_image, whole
        default: return 0;
    }
}

// An upper bound of the encoded size of an output of px pixels of ch channels: incompressible
// pixels for PNG, 12 bits a pixel for JPEG and WebP. (The encoder's own buffer may be up to twice
// that while it grows, and our copy of it is that again.)
u64 encoded_bound(u64 px, u64 ch, out_format f) {
    return (f == out_format::png ? px * ch + px / 32 : px * 3 / 2) + 64 * kib;
}

// What encoding one output of w x h takes beside its pixels (its output excluded).
u64 encoder_bytes(int w, int h, bool alpha, const thumbnails_request& req) {
    const u64 px = area(w, h);
    switch (req.fmt) {
        case out_format::jpeg: {
            // Optimised Huffman tables need every coefficient: 4:2:0 below quality 90, else 4:4:4.
            const u64 mcu = req.quality >= 90 ? 8 : 16;
            const u64 blocks_w = (u64(w) + mcu - 1) / mcu, blocks_h = (u64(h) + mcu - 1) / mcu;
            const u64 blocks = blocks_w * blocks_h * (mcu == 16 ? 6 : 3);
            return 64 * kib + blocks * 128 + u64(w) * 4;
        }
        case out_format::png: return 320 * kib + 4 * (u64(w) * 4 + 1);  // zlib's deflate state, scanlines
        case out_format::webp: {
            // The ARGB picture, its YUV(A) copy, macroblock rows; an alpha plane is compressed
            // losslessly, with a hash chain and backward references of several words a pixel.
            u64 b = 256 * kib + px * (4 + 3) + u64(w) * 64;
            if (alpha) b += px * 18;
            return b;
        }
    }
    return 0;
}

}  // namespace

result<std::uint64_t> estimate_memory(std::span<const std::uint8_t> data, const header_info& header,
                                      const thumbnails_request& req) {
    auto plan = detail::plan_request(header, req);
    if (!plan) return plan.error();
    const size stored = decoded_size(header, plan->hint);
    const int ch = header.layout.channels;
    const auto geometry = detail::output_geometries(header, req, plan->targets, stored.width, stored.height);
    const metadata meta = read_metadata(data, header.fmt);

    // Fixed: each library's small allocations, Little CMS's transform when there is a profile.
    u64 fixed = 2 * mib + u64(data.size()) + meta.icc.size() + meta.exif.size();
    if (!meta.icc.empty() || header.layout.components == 4) fixed += 2 * mib;

    std::vector<u64> out_bytes;
    const bool swap = detail::swaps_sides(header.orientation);
    u64 decoding = decoder_bytes(header, swap ? header.height : header.width, swap ? header.width : header.height, stored);
    for (const auto& g : geometry) {
        out_bytes.push_back(area(g.stored_target.width, g.stored_target.height) * u64(ch));
        decoding += out_bytes.back() + detail::consumer_bytes(ch, g.stored_crop, g.stored_target, g.sx, g.sy);
    }
    // Then one output after the other.
    u64 encoding = 0, encoded_before = 0, remaining = 0;
    for (u64 b : out_bytes) remaining += b;
    for (std::size_t i = 0; i < geometry.size(); ++i) {
        const size t = geometry[i].target;
        const u64 px = area(t.width, t.height);
        const u64 rgb = px * u64(ch == 1 ? 3 : ch);
        u64 here = remaining;                                   // this output and the ones after it
        if (ch == 1) here += rgb;                               // grey made RGB
        if (header.orientation != 1) here += rgb;               // the upright copy
        const u64 encoded = encoded_bound(px, ch == 4 ? 4 : 3, req.fmt);
        here += encoder_bytes(t.width, t.height, ch == 4, req) + 3 * encoded;  // the encoder's buffer, our copy
        if (req.keep_metadata) here += encoded + meta.exif.size();    // embed_exif's copy
        encoding = std::max(encoding, here + encoded_before);
        encoded_before += encoded;
        remaining -= out_bytes[i];
    }
    // The allocator's own overhead (page rounding of large blocks, fragmentation): 1/32 more.
    const u64 total = fixed + std::max(decoding, encoding);
    return total + total / 32;
}

result<std::uint64_t> estimate_memory(std::span<const std::uint8_t> data, const thumbnails_request& req) {
    auto header = read_header(data);
    if (!header) return header.error();
    return estimate_memory(data, *header, req);
}

error memory_error(const header_info& h, std::uint64_t needed, std::uint64_t budget) {
    auto in_mib = [](u64 b) { return std::to_string((b + mib - 1) / mib) + " MiB"; };
    std::string kind;
    const header_layout& l = h.layout;
    if (h.fmt == format::png && l.whole_frame) kind = "interlaced ";
    if (h.fmt == format::gif && l.whole_frame) kind = "interlaced ";
    if (h.fmt == format::jpeg && l.whole_frame) kind = "progressive ";
    if (h.fmt == format::webp && l.animated) kind = "animated ";
    else if (h.fmt == format::webp && l.lossless) kind = "lossless ";
    std::string name(to_string(h.fmt));
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (h.fmt == format::webp) name = "WebP";
    return error{errc::too_large_for_memory, "decoding this " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                                                 " " + kind + name + " takes about " + in_mib(needed) +
                                                 ", more than the whole memory budget of " + in_mib(budget) +
                                                 " (--max-memory)"};
}

}  // namespace quickthumb::image
