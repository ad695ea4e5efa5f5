#pragma once
// The image engine: sniff, read the header, decode (with JPEG shrink-on-load), resize, encode.
// Pure: bytes in, bytes out. It knows nothing of HTTP, SQLite or jobs.
#include "quickthumb/error.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::image {

enum class format { unknown, jpeg, png, gif, bmp, webp, tiff, svg, heic, avif, ico, psd };

std::string_view to_string(format f) noexcept;   // "jpeg", "png", ..., "unknown"

// Looks only at magic bytes (the first few dozen bytes are enough); never at a file name.
format sniff(std::span<const std::uint8_t> head) noexcept;

struct header_info {
    format fmt = format::unknown;
    int width = 0;
    int height = 0;
};

// Reads dimensions from the header without decoding pixels. Errors: not_an_image,
// unsupported_format (named in the message), corrupt_image.
result<header_info> read_header(std::span<const std::uint8_t> data);

// 8-bit interleaved pixels, channels is 3 (RGB) or 4 (RGBA, straight alpha).
struct pixels {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<std::uint8_t> data;
};

// Decodes the whole image. When min_width/min_height are given (> 0), a JPEG may be decoded at a
// DCT scale (1/2, 1/4, 1/8) as long as the result stays at least that large in both dimensions.
// max_pixels is checked against the header before any pixel is decoded (too_many_pixels).
result<pixels> decode(std::span<const std::uint8_t> data, std::int64_t max_pixels, int min_width = 0,
                      int min_height = 0);

enum class fit { contain, cover };

struct size {
    int width = 0;
    int height = 0;
    bool operator==(const size&) const = default;
};

// The output size for a source of src_w x src_h inside a box of box_w x box_h (0 = unconstrained
// in that dimension; at least one is > 0). contain keeps the aspect ratio inside the box; cover
// fills the box (and the source is centre-cropped to its aspect ratio). Never upscales: a source
// smaller than the box keeps its size (cover then crops to the box's aspect ratio).
// Every dimension is at least 1.
size target_size(int src_w, int src_h, int box_w, int box_h, fit f) noexcept;

// The centred crop of the source that has the aspect ratio of `target` (for cover).
struct rect {
    int x = 0, y = 0, width = 0, height = 0;
};
rect cover_crop(int src_w, int src_h, size target) noexcept;

// Resamples (sRGB-correct, alpha-weighted) `src`, or the `crop` of it, to exactly `to`.
pixels resize(const pixels& src, rect crop, size to);

// Encoders. JPEG flattens alpha onto white.
result<std::vector<std::uint8_t>> encode_jpeg(const pixels& p, int quality);
result<std::vector<std::uint8_t>> encode_png(const pixels& p);

enum class out_format { jpeg, png };

struct thumbnail_request {
    int box_width = 256;
    int box_height = 256;
    fit mode = fit::contain;
    out_format fmt = out_format::jpeg;
    int quality = 80;
    std::int64_t max_pixels = 100'000'000;
};

struct thumbnail {
    header_info source;          // the input's format and full dimensions
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> bytes;  // encoded output
};

// The whole pipeline: read_header -> limits -> decode (shrink-on-load) -> crop/resize -> encode.
result<thumbnail> make_thumbnail(std::span<const std::uint8_t> data, const thumbnail_request& req);

}  // namespace quickthumb::image
