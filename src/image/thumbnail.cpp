// The thumbnail pipeline: header -> limits -> decode (shrink-on-load) -> crop/resize -> encode.
#include "quickthumb/image.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace quickthumb::image {
namespace {

// The smallest decode size that still yields `target` without upscaling. For cover only the crop
// region must cover the target, so the full source may be scaled by target/crop.
size min_decode_size(const header_info& h, size target, fit mode) {
    if (mode == fit::contain) return target;
    const rect crop = cover_crop(h.width, h.height, target);
    return {static_cast<int>(std::ceil(double(h.width) * target.width / crop.width)),
            static_cast<int>(std::ceil(double(h.height) * target.height / crop.height))};
}

}  // namespace

result<thumbnail> make_thumbnail(std::span<const std::uint8_t> data, const thumbnail_request& req) {
    auto header = read_header(data);
    if (!header) return header.error();

    int box_w = std::max(req.box_width, 0);
    int box_h = std::max(req.box_height, 0);
    if (box_w == 0 && box_h == 0) box_w = box_h = 256;

    // The target comes from the full header size, so it does not depend on the DCT scale chosen.
    const size target = target_size(header->width, header->height, box_w, box_h, req.mode);
    const size hint = min_decode_size(*header, target, req.mode);
    auto decoded = decode(data, req.max_pixels, hint.width, hint.height);  // checks max_pixels first
    if (!decoded) return decoded.error();

    // Recompute the crop on the decoded size: DCT scaling rounds up, which shifts the aspect slightly.
    const rect crop = req.mode == fit::cover ? cover_crop(decoded->width, decoded->height, target)
                                             : rect{0, 0, decoded->width, decoded->height};
    pixels out = (crop.width == decoded->width && crop.height == decoded->height && target.width == crop.width &&
                  target.height == crop.height)
                     ? std::move(*decoded)
                     : resize(*decoded, crop, target);

    auto bytes = req.fmt == out_format::jpeg ? encode_jpeg(out, req.quality) : encode_png(out);
    if (!bytes) return bytes.error();
    return thumbnail{*header, out.width, out.height, std::move(*bytes)};
}

}  // namespace quickthumb::image
