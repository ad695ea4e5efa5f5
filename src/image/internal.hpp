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

// ---- decoding (decode.cpp and its per-format files) ------------------------------------------

// Receives a decoded image's rows top to bottom, as stored (not yet oriented) and in the file's
// colour space (CMYK already converted to RGB). Decoders stream into it: a decoder that can make
// rows one at a time never holds the whole image (baseline JPEG, non-interlaced PNG, GIF frames
// that are not interlaced, scaled WebP); the others hold it and then stream it.
class row_sink {
public:
    virtual ~row_sink() = default;
    // Once, before the first row: the size and channels (1 grey, 3 RGB, 4 RGBA) of the rows.
    virtual void begin(int width, int height, int channels) = 0;
    // The next row (width * channels bytes). false stops the decode there (errc::cancelled).
    virtual bool row(const std::uint8_t* data) = 0;
};

// What a decode found beside the pixels.
struct decode_info {
    header_info header;             // upright dimensions and orientation
    std::vector<std::uint8_t> icc;  // still to apply; empty when none or already applied (CMYK)
    bool grey = false;              // the source is greyscale (single-channel rows, or R=G=B)
    std::vector<std::uint8_t> exif;  // the source's EXIF TIFF block, for keep_metadata
};

// The CRC-32 of PNG chunks (and zlib), table-driven.
std::uint32_t crc32(const std::uint8_t* p, std::size_t n);

// too_many_pixels when the header's pixel count is above the limit.
std::optional<error> pixel_limit_error(const header_info& h, std::int64_t max_pixels);

// Decodes `data` into `sink`, whose header the caller has read with read_header and checked
// against max_pixels (pixel_limit_error) before anything is allocated. min_w/min_h (upright, 0 =
// none) let a JPEG decode at a DCT scale and a WebP at a reduced size, at least that large.
// `stop`, when set, is polled inside long steps (a multi-scan JPEG's first pass); true abandons
// the decode with errc::cancelled, as does the sink returning false.
result<decode_info> decode_rows(std::span<const std::uint8_t> data, const header_info& header, int min_w, int min_h,
                                row_sink& sink, const std::function<bool()>& stop = {});

// The per-format decoders behind decode_rows (min_w/min_h here in stored orientation).
result<void> decode_jpeg_rows(std::span<const std::uint8_t> data, int min_w, int min_h,
                              std::span<const std::uint8_t> icc, row_sink& sink, const std::function<bool()>& stop,
                              bool* icc_used, bool* grey);
result<void> decode_png_rows(std::span<const std::uint8_t> data, row_sink& sink, bool* grey);
result<void> decode_gif_rows(std::span<const std::uint8_t> data, row_sink& sink);
result<void> decode_webp_rows(std::span<const std::uint8_t> data, int min_w, int min_h, row_sink& sink);
result<void> decode_bmp_rows(std::span<const std::uint8_t> data, row_sink& sink);

// The JPEG DCT scale (1, 2, 4 or 8: decoded at 1/denom, sides rounded up) whose output stays at
// least min_w x min_h (stored orientation; 0 = no minimum).
int jpeg_scale_denom(int w, int h, int min_w, int min_h);
// The size a w x h WebP is decoded at (libwebp scales while decoding): the smallest of its aspect
// that is at least min_w x min_h, never larger than the image.
size webp_decode_size(int w, int h, int min_w, int min_h);

// The first frame of a GIF, from its image descriptor (for the header and the memory estimate).
struct gif_frame {
    int left = 0, top = 0, width = 0, height = 0;
    bool interlaced = false;
};
result<gif_frame> read_gif_frame(std::span<const std::uint8_t> data);

// The layout of a WebP (read_header's header_layout): VP8L colour-index packing read from the
// bitstream's leading transforms, the first frame of an animation.
header_layout webp_layout(std::span<const std::uint8_t> data);

// Streams a whole buffer of rows into a sink (for decoders that must hold the image).
result<void> stream_rows(const std::uint8_t* rows, int width, int height, int channels, row_sink& sink);

// The error a stopping sink or stop function turns a decode into.
error stopped_error();
error corrupt_error(std::string_view format_name, std::string_view why);

// ---- resampling (resize.cpp) --------------------------------------------------------------

// Greyscale sources decode to one channel (a third of the memory and of the resampling work);
// they become RGB once small, before colour conversion and encoding. Other pixels pass through.
pixels expand_grey(pixels p);

// Takes the rows of a crop of a larger image one at a time, top to bottom (each row from the
// crop's left edge), and makes `out` from them: a resample (box pre-shrink, then Lanczos-3, as
// resize() describes) or, when the crop already has the output's size, a copy. Memory beside
// `out`: O(output width x taps) and the box accumulator, whatever the source's height.
class row_consumer {
public:
    virtual ~row_consumer() = default;
    virtual void push(const std::uint8_t* row) = 0;
    // Whether every output row has been made (all crop.height rows pushed).
    virtual bool done() const = 0;
};

// `to` and the scales as in resize_scaled; out is allocated here (to.width x to.height x channels).
std::unique_ptr<row_consumer> make_consumer(int channels, rect crop, size to, double sx, double sy, pixels& out);

// resize(), with the scale of each axis given (source pixels per output pixel) instead of derived
// from crop/to; 0 derives it. libvips scales both axes by the same factor, the binding side's, and
// rounds the other side's size: matching that matters on pixel-fine patterns. The output is centred
// on the crop; taps past the crop repeat its edge.
pixels resize_scaled(const pixels& src, rect crop, size to, double sx, double sy);

// The bytes the resampler state for one output takes beside its output buffer (for the memory estimate).
std::uint64_t consumer_bytes(int channels, rect crop, size to, double sx, double sy);

// ---- the pipeline's plan (thumbnail.cpp) ----------------------------------------------------

struct request_plan {
    std::vector<size> targets;  // one per box, upright, from the full size
    size hint;                  // the decode must be at least this large (upright), for shrink-on-load
};
// Errors: invalid_option (no boxes, an output over max_pixels), too_many_pixels.
result<request_plan> plan_request(const header_info& header, const thumbnails_request& req);

// What one output is made from, on a decode of stored_w x stored_h (stored orientation).
struct output_geometry {
    size target;        // upright
    rect stored_crop;   // the part of the decoded pixels it shows, inside them
    size stored_target;  // the resampler's output, before orientation
    double sx = 0, sy = 0;  // source pixels per output pixel (0: from crop/target; 1 with equal sizes: a copy)
};
std::vector<output_geometry> output_geometries(const header_info& header, const thumbnails_request& req,
                                               const std::vector<size>& targets, int stored_w, int stored_h);

// ---- geometry ----------------------------------------------------------------------------

inline bool swaps_sides(int orientation) { return orientation >= 5 && orientation <= 8; }

// The rectangle of the stored image that appears as `r` in the upright image of an image stored
// as stored_w x stored_h with the given orientation.
rect stored_rect(rect r, int stored_w, int stored_h, int orientation);

}  // namespace quickthumb::image::detail
