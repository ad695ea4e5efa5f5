#pragma once
// The image engine: sniff, read the header and metadata (EXIF orientation, ICC profile), decode
// (with JPEG shrink-on-load), orient, convert to sRGB, resize, encode.
// Pure: bytes in, bytes out. It knows nothing of HTTP, SQLite or jobs.
#include "quickthumb/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::image {

enum class format { unknown, jpeg, png, gif, bmp, webp, tiff, svg, heic, avif, ico, psd };

std::string_view to_string(format f) noexcept;   // "jpeg", "png", ..., "unknown"

// Looks only at magic bytes (the first few dozen bytes are enough); never at a file name.
format sniff(std::span<const std::uint8_t> head) noexcept;

// nullopt for the formats the engine decodes (JPEG, PNG, WebP, GIF, BMP); else the error an input
// in format `f` gets: not_an_image, or unsupported_format naming it. The messages list what is supported.
std::optional<error> unsupported_input(format f);

// How a file is laid out, as far as its decoder's memory depends on it (read from the header).
struct header_layout {
    int channels = 3;           // of the decoded rows: 1 (grey), 3, or 4 (alpha)
    bool whole_frame = false;   // the decoder must hold every pixel: interlaced PNG or GIF frame,
                                // multi-scan JPEG (progressive), lossless, alpha or animated WebP, BMP
    std::int64_t coefficient_bytes = 0;  // JPEG: the DCT coefficients a multi-scan decode keeps
    int components = 0;         // JPEG: colour components (1 grey, 3 YCbCr, 4 CMYK/YCCK)
    int bit_depth = 8;          // PNG: bits a sample (16-bit scanlines are twice as wide)
    bool lossless = false;      // WebP: VP8L
    bool alpha = false;         // WebP: an alpha plane (ALPH) or lossless alpha
    bool animated = false;      // WebP
    int packed_width = 0;       // WebP lossless: pixels a row holds after colour-index packing
    int frame_width = 0, frame_height = 0;  // GIF and animated WebP: the first frame
};

struct header_info {
    format fmt = format::unknown;
    int width = 0;         // as displayed: after the EXIF orientation (5..8 swap the stored sides)
    int height = 0;
    int orientation = 1;   // EXIF orientation 1..8 (1 when absent or invalid)
    header_layout layout;
};

// Reads dimensions and the EXIF orientation without decoding pixels. Errors: not_an_image,
// unsupported_format (named in the message), corrupt_image.
result<header_info> read_header(std::span<const std::uint8_t> data);

// ---- metadata (src/image/exif.cpp) ---------------------------------------------------------
// Every reader here is bounds-checked and total: hostile bytes give "nothing found", never a read
// outside the span. Damaged metadata is ignored rather than failing the image.

// The Orientation tag (0x0112) of IFD0 in an EXIF block: a TIFF structure ("II*\0" / "MM\0*"),
// optionally preceded by "Exif\0\0". Returns 1..8, or 1 when absent or out of range.
int exif_orientation(std::span<const std::uint8_t> exif) noexcept;

struct metadata {
    int orientation = 1;
    std::vector<std::uint8_t> icc;   // the embedded ICC profile, empty if none
    std::vector<std::uint8_t> exif;  // the EXIF TIFF block ("II*\0"/"MM\0*"...), empty if none or > 64 KiB
};

// The EXIF orientation and the ICC profile of a JPEG (APP1 "Exif", APP2 "ICC_PROFILE" chunks),
// PNG (eXIf, iCCP inflated to at most 8 MiB) or WebP (VP8X "EXIF", "ICCP"). Other formats: none.
// with_icc=false skips the ICC profile (for the header, which needs only the orientation).
metadata read_metadata(std::span<const std::uint8_t> data, format f, bool with_icc = true);

// A copy of an EXIF TIFF block with its IFD0 Orientation set to 1 (for pixels already upright).
// Hostile or damaged blocks are copied as they are when no Orientation entry can be found.
std::vector<std::uint8_t> exif_upright(std::span<const std::uint8_t> exif);

// Adds an EXIF block to an encoded JPEG (APP1 after SOI), PNG (eXIf after IHDR) or WebP (the
// extended container's EXIF chunk). Errors: internal, for bytes not made by our encoders.
result<std::vector<std::uint8_t>> embed_exif(std::vector<std::uint8_t> encoded, std::span<const std::uint8_t> exif);

// ---- pixels ------------------------------------------------------------------------------

// 8-bit interleaved pixels, channels is 3 (RGB) or 4 (RGBA, straight alpha); resize() also takes 1 (grey).
struct pixels {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<std::uint8_t> data;
};

// Decodes the whole image, upright (EXIF orientation applied) and in sRGB (an embedded ICC
// profile converted with Little CMS; CMYK without a profile by the naive formula, Adobe-inverted
// inks handled). When min_width/min_height are given (> 0, in upright orientation), a JPEG may be
// decoded at a DCT scale (1/2, 1/4, 1/8) as long as the result stays at least that large.
// max_pixels is checked against the header before any pixel is decoded (too_many_pixels).
result<pixels> decode(std::span<const std::uint8_t> data, std::int64_t max_pixels, int min_width = 0,
                      int min_height = 0);

// The pixels as displayed for an EXIF orientation (1..8; anything else is 1).
pixels apply_orientation(pixels p, int orientation);

// Converts pixels described by an ICC profile to sRGB in place. An RGB profile applies to RGB(A)
// pixels, a grey profile to grey pixels stored as R=G=B. Returns false (pixels untouched) when the
// profile is unusable or does not match; the caller then treats the pixels as sRGB.
bool convert_to_srgb(pixels& p, std::span<const std::uint8_t> icc_profile, bool grey_source = false);

// ---- geometry and resampling -------------------------------------------------------------

// contain: inside the box, aspect kept. cover: fills the box, the source centre-cropped to its
// aspect. fill: stretched to exactly the box, aspect not kept.
enum class fit { contain, cover, fill };

struct size {
    int width = 0;
    int height = 0;
    bool operator==(const size&) const = default;
};

// The output size for a source of src_w x src_h inside a box of box_w x box_h (0 = unconstrained
// in that dimension; both 0 = the source size). With only one side given, every mode scales to
// it. Without `enlarge` nothing is upscaled: contain keeps a small source's size, cover then
// only crops it to the box's aspect ratio, fill clamps each side to the source's.
// Every dimension is at least 1.
size target_size(int src_w, int src_h, int box_w, int box_h, fit f, bool enlarge = false) noexcept;

// The centred crop of the source that has the aspect ratio of `target` (for cover).
struct rect {
    int x = 0, y = 0, width = 0, height = 0;
    bool operator==(const rect&) const = default;
};
rect cover_crop(int src_w, int src_h, size target) noexcept;

// Resamples `src`, or the `crop` of it, to exactly `to`, like libvips' default: an integer box
// pre-shrink leaving a factor >= 2, then Lanczos-3, on the gamma-encoded values (libvips' default,
// and what the quality bar compares against), with alpha premultiplied so that transparent pixels
// do not bleed their colour (no dark fringes). Memory: O(output width x filter taps) and a source row.
pixels resize(const pixels& src, rect crop, size to);

// ---- encoders ----------------------------------------------------------------------------

struct rgb {
    std::uint8_t r = 255, g = 255, b = 255;
    bool operator==(const rgb&) const = default;
};

struct jpeg_options {
    int quality = 80;           // 1..100
    bool progressive = false;
    rgb background{};           // alpha is flattened onto it
};

// Optimised Huffman tables, 4:2:0 (4:4:4 from quality 90), no metadata.
result<std::vector<std::uint8_t>> encode_jpeg(const pixels& p, const jpeg_options& opts);
result<std::vector<std::uint8_t>> encode_jpeg(const pixels& p, int quality);  // flattens onto white
result<std::vector<std::uint8_t>> encode_png(const pixels& p);                // keeps alpha
result<std::vector<std::uint8_t>> encode_webp(const pixels& p, int quality);  // lossy, keeps alpha

// ---- the pipeline ------------------------------------------------------------------------

enum class out_format { jpeg, png, webp };

struct thumbnails_request {
    std::vector<size> boxes{{256, 256}};  // one output per box, in this order; 0 = unconstrained
    fit mode = fit::contain;
    out_format fmt = out_format::jpeg;
    int quality = 80;                     // JPEG and WebP, 1..100
    bool progressive = false;             // JPEG
    bool enlarge = false;                 // allow upscaling a source smaller than a box
    rgb background{};                     // JPEG output flattens alpha onto it (default white)
    // Copy the source's EXIF (Orientation set to 1: the pixels are upright) into every output.
    // ICC profiles are never copied: the pixels have been converted to sRGB. XMP is not kept.
    bool keep_metadata = false;
    std::int64_t max_pixels = 100'000'000;  // per source frame, and per output
    // Called at safe points (between JPEG scanline batches, after the decode, after each output)
    // with the progress so far, 0-100. Returning false stops the work there: the result is then
    // errc::cancelled. Lets a caller enforce a deadline or a cancel without killing a thread.
    std::function<bool(int percent)> checkpoint;
};

struct output {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> bytes;  // encoded, sRGB, upright, no metadata unless keep_metadata
};

struct thumbnails {
    header_info source;          // format, upright (oriented) full dimensions and orientation
    std::vector<output> outputs;  // one per box
};

// The whole pipeline, ONE decode for all boxes: read_header -> limits -> decode at the scale the
// largest box needs (JPEG DCT scaling, WebP scaled decoding), streamed row by row into every
// box's resampler at once -> per box: sRGB -> orient -> encode. Only the decoders that must hold
// a whole frame (interlaced PNG and GIF, multi-scan JPEG, lossless or animated WebP, BMP) hold it. Errors: those of
// read_header/decode, and invalid_option for no boxes or an output larger than max_pixels.
result<thumbnails> make_thumbnails(std::span<const std::uint8_t> data, const thumbnails_request& req);
// The same with the header already read (read_header on the same bytes), so it is not read twice.
result<thumbnails> make_thumbnails(std::span<const std::uint8_t> data, const thumbnails_request& req,
                                   const header_info& header);

// ---- memory (src/image/memory.cpp) --------------------------------------------------------

// The most memory make_thumbnails(data, req) takes at once, in bytes, from the header alone (and
// the size of the metadata): the input, what the decoder holds (a few rows, or the whole frame
// when it must: header_layout::whole_frame), every output's resampler and pixels, and the encoder
// of each output in turn. An upper bound of the measured heap peak and within about 2x of it
// (tests/test_memory_estimate.cpp). Errors: those of read_header and of the request
// (too_many_pixels, invalid_option), as make_thumbnails would give.
result<std::uint64_t> estimate_memory(std::span<const std::uint8_t> data, const header_info& header,
                                      const thumbnails_request& req);
result<std::uint64_t> estimate_memory(std::span<const std::uint8_t> data, const thumbnails_request& req);

// too_large_for_memory: "decoding this 9000x9000 interlaced PNG takes about 310 MiB, more than the
// whole memory budget of 256 MiB".
error memory_error(const header_info& h, std::uint64_t needed, std::uint64_t budget);

// Single-box convenience over make_thumbnails, kept for existing callers.
struct thumbnail_request {
    int box_width = 256;
    int box_height = 256;
    fit mode = fit::contain;
    out_format fmt = out_format::jpeg;
    int quality = 80;
    std::int64_t max_pixels = 100'000'000;
};

struct thumbnail {
    header_info source;  // as in thumbnails
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> bytes;  // encoded output
};

// A box of 0x0 means 256x256 here (unlike make_thumbnails, where it means the source size).
result<thumbnail> make_thumbnail(std::span<const std::uint8_t> data, const thumbnail_request& req);

}  // namespace quickthumb::image
