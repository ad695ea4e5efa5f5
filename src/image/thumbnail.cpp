// The thumbnail pipeline: header -> limits -> ONE decode (shrink-on-load for the largest box) ->
// per box: crop/resize -> sRGB -> orient -> encode.
//
// Resizing, colour conversion and orientation happen on the stored pixels and in that order, so
// the expensive steps after the resize touch only thumbnail-sized buffers. That is exact for the
// orientation (the crop rectangle is mapped into stored coordinates, and the filter is symmetric)
// and very nearly so for the colour (resampling is linear, and matrix/shaper profiles are linear
// after their curves; the resampler linearises with the sRGB curve).
#include "internal.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

namespace quickthumb::image {
namespace {

// The smallest upright decode size that still yields `target` without upscaling. For cover only
// the crop region must cover the target, so the full source may be scaled by target/crop.
size min_decode_size(const header_info& h, size target, fit mode) {
    if (mode != fit::cover) return target;
    const rect crop = cover_crop(h.width, h.height, target);
    return {static_cast<int>(std::ceil(double(h.width) * target.width / crop.width)),
            static_cast<int>(std::ceil(double(h.height) * target.height / crop.height))};
}

// Which upright axis decides the scale (true: x), as libvips decides it: contain scales by the
// smaller factor, cover by the larger; a one-sided box by its side.
bool x_binds(const header_info& h, size box, fit mode) {
    if (box.height <= 0) return true;
    if (box.width <= 0) return false;
    const double fx = double(box.width) / h.width, fy = double(box.height) / h.height;
    return mode == fit::cover ? fx >= fy : fx <= fy;
}

result<std::vector<std::uint8_t>> encode(const pixels& p, const thumbnails_request& req) {
    switch (req.fmt) {
        case out_format::png: return encode_png(p);
        case out_format::webp: return encode_webp(p, req.quality);
        case out_format::jpeg: break;
    }
    return encode_jpeg(p, jpeg_options{req.quality, req.progressive, req.background});
}

}  // namespace

result<thumbnails> make_thumbnails(std::span<const std::uint8_t> data, const thumbnails_request& req) {
    if (req.boxes.empty()) return error{errc::invalid_option, "no output size was requested"};
    auto header = read_header(data);
    if (!header) return header.error();
    if (auto e = detail::pixel_limit_error(*header, req.max_pixels)) return *e;

    // Targets come from the full upright size, so they do not depend on the DCT scale chosen.
    std::vector<size> targets;
    size hint{0, 0};
    for (const size& box : req.boxes) {
        const size t = target_size(header->width, header->height, box.width, box.height, req.mode, req.enlarge);
        if (std::int64_t{t.width} * t.height > req.max_pixels)
            return error{errc::invalid_option, "an output of " + std::to_string(t.width) + "x" +
                                                   std::to_string(t.height) + " pixels is more than the limit of " +
                                                   std::to_string(req.max_pixels)};
        targets.push_back(t);
        // Shrink-on-load leaves at least a factor of 2 to the resampler, as libvips does: a 1/8 DCT
        // decode is an 8x8 box average and, for 4:2:0 files, its colour is at 1/16. Going all the
        // way to the target size measurably loses detail and colour (31 dB against vipsthumbnail's
        // output for a 2725x2225 photo at 256 px, 35 dB this way) for ~17% less decoding time.
        const size need = min_decode_size(*header, t, req.mode);
        auto twice = [](int v) { return static_cast<int>(std::min<std::int64_t>(2 * std::int64_t{v}, INT_MAX)); };
        hint = {std::max(hint.width, twice(need.width)), std::max(hint.height, twice(need.height))};
    }

    // Progress: the decode is most of the work (0-60%), then each output its share of the rest.
    const error stopped{errc::cancelled, "stopped at a safe point"};
    auto proceed = [&](int percent) { return !req.checkpoint || req.checkpoint(percent); };
    if (!proceed(0)) return stopped;
    const std::function<bool()> stop_decode = req.checkpoint ? std::function<bool()>([&] { return !req.checkpoint(0); })
                                                             : std::function<bool()>{};
    auto dev = detail::decode_device(data, *header, hint.width, hint.height, stop_decode);
    if (!dev) return dev.error();
    if (!proceed(60)) return stopped;
    const int orientation = dev->header.orientation;
    const bool swap = detail::swaps_sides(orientation);
    const int stored_w = dev->px.width, stored_h = dev->px.height;
    const int upright_w = swap ? stored_h : stored_w, upright_h = swap ? stored_w : stored_h;

    thumbnails out;
    out.source = dev->header;
    const std::vector<std::uint8_t> exif = req.keep_metadata ? exif_upright(dev->exif) : std::vector<std::uint8_t>{};
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const size target = targets[i];
        // The crop on the decoded size (DCT scaling rounds up, which shifts the aspect slightly),
        // chosen upright so that it is centred as displayed, then mapped to the stored pixels.
        const rect crop = req.mode == fit::cover ? cover_crop(upright_w, upright_h, target)
                                                 : rect{0, 0, upright_w, upright_h};
        const rect stored_crop = detail::stored_rect(crop, stored_w, stored_h, orientation);
        const size stored_target = swap ? size{target.height, target.width} : target;
        const bool identity = stored_crop == rect{0, 0, stored_w, stored_h} &&
                              stored_target == size{stored_w, stored_h};
        // One scale for both axes, the binding side's, as libvips does; fill stretches each axis.
        double sx = 0, sy = 0;
        if (req.mode != fit::fill) {
            const bool bx = x_binds(*header, req.boxes[i], req.mode);
            const double s = bx ? double(crop.width) / target.width : double(crop.height) / target.height;
            sx = sy = s;
        }
        pixels px;
        if (!identity)
            px = detail::resize_scaled(dev->px, stored_crop, stored_target, sx, sy);
        else if (i + 1 == targets.size())
            px = std::move(dev->px);  // the last user of the decode
        else
            px = dev->px;
        px = detail::expand_grey(std::move(px));
        if (!dev->icc.empty()) convert_to_srgb(px, dev->icc, dev->grey);
        px = apply_orientation(std::move(px), orientation);
        auto bytes = encode(px, req);
        if (bytes && !exif.empty()) bytes = embed_exif(std::move(*bytes), exif);
        if (!bytes) return bytes.error();
        out.outputs.push_back(output{px.width, px.height, std::move(*bytes)});
        if (!proceed(60 + static_cast<int>(40 * (i + 1) / targets.size()))) return stopped;
    }
    return out;
}

result<thumbnail> make_thumbnail(std::span<const std::uint8_t> data, const thumbnail_request& req) {
    thumbnails_request r;
    r.boxes = {{std::max(req.box_width, 0), std::max(req.box_height, 0)}};
    if (r.boxes[0] == size{0, 0}) r.boxes[0] = {256, 256};
    r.mode = req.mode;
    r.fmt = req.fmt;
    r.quality = req.quality;
    r.max_pixels = req.max_pixels;
    auto t = make_thumbnails(data, r);
    if (!t) return t.error();
    auto& o = t->outputs.front();
    return thumbnail{t->source, o.width, o.height, std::move(o.bytes)};
}

}  // namespace quickthumb::image
