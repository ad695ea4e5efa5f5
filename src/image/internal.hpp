#pragma once
// Shared between the image engine's translation units; not part of the public API.
#include "quickthumb/image.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace quickthumb::image::detail {

// ---- colour (colour.cpp) -----------------------------------------------------------------

// A Little CMS transform to sRGB, shared through a small process-wide cache (creating one costs
// far more than running it on a thumbnail). Created with cmsFLAGS_NOCACHE, so one transform may
// run on several threads at once.
using transform_ptr = std::shared_ptr<void>;

enum class colour_source { rgb, rgba, cmyk, cmyk_inverted, grey };

// nullptr when the profile cannot be parsed, is of another colour space than `src`, or Little CMS
// cannot build the transform. rgb/rgba/grey transform to RGB/RGBA/RGB; cmyk to RGB.
transform_ptr srgb_transform(std::span<const std::uint8_t> icc, colour_source src);

// Runs `count` pixels through a transform (input and output formats as given at creation).
void run_transform(const transform_ptr& t, const void* in, void* out, std::size_t count);

// ---- decoding (decode.cpp) -----------------------------------------------------------------

// Pixels as stored in the file (not yet oriented) and in the file's colour space, except CMYK,
// which is always converted to RGB while decoding (through the profile when there is one).
struct device_image {
    pixels px;                      // 1 (grey), 3 or 4 channels
    header_info header;             // upright dimensions and orientation
    std::vector<std::uint8_t> icc;  // still to apply; empty when none or already applied (CMYK)
    bool grey = false;              // the source is greyscale (pixels are R=G=B)
    std::vector<std::uint8_t> exif;  // the source's EXIF TIFF block, for keep_metadata
};

// The CRC-32 of PNG chunks (and zlib), table-driven.
std::uint32_t crc32(const std::uint8_t* p, std::size_t n);

// too_many_pixels when the header's pixel count is above the limit.
std::optional<error> pixel_limit_error(const header_info& h, std::int64_t max_pixels);

// Decodes `data`, whose header the caller has read with read_header and checked against
// max_pixels (pixel_limit_error) before anything is allocated. min_w/min_h are upright, as in decode().
// `stop`, when set, is polled while a JPEG decodes (every few scanlines); true abandons the decode
// with errc::cancelled.
result<device_image> decode_device(std::span<const std::uint8_t> data, const header_info& header, int min_w,
                                   int min_h, const std::function<bool()>& stop = {});

// ---- resampling (resize.cpp) --------------------------------------------------------------

// Greyscale sources decode to one channel (a third of the memory and of the resampling work);
// they become RGB once small, before colour conversion and encoding. Other pixels pass through.
pixels expand_grey(pixels p);

// resize(), with the scale of each axis given (source pixels per output pixel) instead of derived
// from crop/to; 0 derives it. libvips scales both axes by the same factor, the binding side's, and
// rounds the other side's size: matching that matters on pixel-fine patterns. The output is centred
// on the crop; taps past the crop repeat its edge.
pixels resize_scaled(const pixels& src, rect crop, size to, double sx, double sy);

// ---- geometry ----------------------------------------------------------------------------

inline bool swaps_sides(int orientation) { return orientation >= 5 && orientation <= 8; }

// The rectangle of the stored image that appears as `r` in the upright image of an image stored
// as stored_w x stored_h with the given orientation.
rect stored_rect(rect r, int stored_w, int stored_h, int orientation);

}  // namespace quickthumb::image::detail
