// Decoding to 8-bit RGB/RGBA: libjpeg-turbo (with DCT shrink-on-load), libwebp, stb_image for the rest.
// decode_device gives the pixels as stored; decode() then converts to sRGB and orients them.
#include "internal.hpp"

#include <stb_image.h>
#include <webp/decode.h>

#include <array>
#include <climits>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>
#include <memory>
#include <optional>

#include <jpeglib.h>
#include <jerror.h>

namespace quickthumb::image {
namespace {

error corrupt(std::string_view fmt, std::string_view why) {
    return error{errc::corrupt_image, "corrupt or truncated " + std::string(fmt) + ": " + std::string(why)};
}

// ---- JPEG ----------------------------------------------------------------------------------

// Everything libjpeg touches lives here, owned by the caller: setjmp/longjmp must not skip
// destructors or leave locals of the setjmp frame indeterminate.
struct jpeg_decode_state {
    jpeg_decompress_struct cinfo{};
    jpeg_error_mgr err{};
    std::jmp_buf jump{};
    char message[JMSG_LENGTH_MAX]{};
    jpeg_progress_mgr progress{};
    int warnings = 0;  // non-fatal ones, for debugging
    const std::function<bool()>* stop = nullptr;  // polled by the progress monitor
    unsigned polls = 0;
    bool stopped = false;
    std::vector<std::uint8_t> cmyk_row;
    detail::transform_ptr cmyk_transform;  // from the embedded CMYK profile, if usable
    ~jpeg_decode_state() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed struct, and idempotent
};

[[noreturn]] void jpeg_error_exit(j_common_ptr c) {
    auto* s = static_cast<jpeg_decode_state*>(c->client_data);
    (*c->err->format_message)(c, s->message);
    std::longjmp(s->jump, 1);
}

// libjpeg pads missing data with grey and carries on with a warning; a half-grey thumbnail is
// worse than an error, so those warnings are fatal. Other warnings are only counted.
void jpeg_emit_message(j_common_ptr c, int level) {
    if (level >= 0) return;  // trace messages
    auto* s = static_cast<jpeg_decode_state*>(c->client_data);
    ++s->warnings;
    const int code = c->err->msg_code;
    if (code == JWRN_HIT_MARKER) jpeg_error_exit(c);  // the entropy decoder needed bits that were not there
    if (code == JWRN_JPEG_EOF) {
        // The data ended before EOI. With a single scan, any MCU still missing raises JWRN_HIT_MARKER
        // next, so a file that lacks only its EOI marker decodes fully. With several scans
        // (progressive) whole scans could be missing silently: refuse.
        auto* d = reinterpret_cast<j_decompress_ptr>(c);
        if (d->progressive_mode || d->comps_in_scan < d->num_components) jpeg_error_exit(c);
    }
}

// A few KB of progressive JPEG can hold thousands of tiny scans that take minutes to decode.
// libjpeg-turbo's TurboJPEG API caps scans at 500 for the same reason.
constexpr int max_jpeg_scans = 500;

// libjpeg's progress hook runs every few rows of work: the place to enforce the scan limit and to
// honour a stop request.
void jpeg_limit_scans(j_common_ptr c) {
    auto* d = reinterpret_cast<j_decompress_ptr>(c);
    auto* s = static_cast<jpeg_decode_state*>(c->client_data);
    if (s->stop && *s->stop && (++s->polls % 16 == 0) && (*s->stop)()) {
        s->stopped = true;
        std::snprintf(s->message, sizeof s->message, "stopped");
        std::longjmp(s->jump, 1);
    }
    if (d->input_scan_number <= max_jpeg_scans) return;
    std::snprintf(s->message, sizeof s->message, "more than %d scans (a decompression bomb?)", max_jpeg_scans);
    std::longjmp(s->jump, 1);
}

// The largest 1/denom (denom in 8, 4, 2, 1) whose output stays >= the minimum size.
unsigned int jpeg_scale_denom(int w, int h, int min_w, int min_h) {
    if (min_w <= 0 && min_h <= 0) return 1;
    for (unsigned int denom : {8u, 4u, 2u}) {
        const int sw = static_cast<int>((static_cast<unsigned>(w) + denom - 1) / denom);
        const int sh = static_cast<int>((static_cast<unsigned>(h) + denom - 1) / denom);
        if ((min_w <= 0 || sw >= min_w) && (min_h <= 0 || sh >= min_h)) return denom;
    }
    return 1;
}

// Writes RGB from a CMYK scanline. Adobe (Photoshop) files store the inks inverted.
void cmyk_to_rgb(const std::uint8_t* in, std::uint8_t* out, unsigned int width, bool inverted) {
    for (unsigned int i = 0; i < width; ++i, in += 4, out += 3) {
        unsigned c = in[0], m = in[1], y = in[2], k = in[3];
        if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        out[0] = static_cast<std::uint8_t>((c * k + 127) / 255);
        out[1] = static_cast<std::uint8_t>((m * k + 127) / 255);
        out[2] = static_cast<std::uint8_t>((y * k + 127) / 255);
    }
}

// Nothing with a destructor is created in this frame; all state is reached through `s` and `out`.
// `icc` is the embedded profile: used here for CMYK only (RGB and grey are converted later, on
// fewer pixels). out->icc is left empty when the profile was used.
bool jpeg_decode_into(jpeg_decode_state* s, std::span<const std::uint8_t> data, int min_w, int min_h,
                      std::span<const std::uint8_t> icc, detail::device_image* out) {
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = jpeg_error_exit;
    s->err.emit_message = jpeg_emit_message;
    s->progress.progress_monitor = jpeg_limit_scans;
    s->cinfo.client_data = s;
    if (setjmp(s->jump)) return false;
    jpeg_create_decompress(&s->cinfo);
    s->cinfo.progress = &s->progress;
    jpeg_mem_src(&s->cinfo, data.data(), static_cast<unsigned long>(data.size()));
    jpeg_read_header(&s->cinfo, TRUE);

    const bool cmyk = s->cinfo.jpeg_color_space == JCS_CMYK || s->cinfo.jpeg_color_space == JCS_YCCK;
    // Photoshop writes CMYK inverted (255 = no ink), and marks its files with an Adobe segment.
    const bool inverted = s->cinfo.saw_Adobe_marker;
    out->grey = s->cinfo.jpeg_color_space == JCS_GRAYSCALE;
    if (cmyk) {
        s->cmyk_transform = detail::srgb_transform(
            icc, inverted ? detail::colour_source::cmyk_inverted : detail::colour_source::cmyk);
    }
    // Grey stays one channel until the pipeline has made it small (detail::expand_grey).
    s->cinfo.out_color_space = cmyk ? JCS_CMYK : out->grey ? JCS_GRAYSCALE : JCS_RGB;
    s->cinfo.scale_num = 1;
    s->cinfo.scale_denom = jpeg_scale_denom(static_cast<int>(s->cinfo.image_width),
                                            static_cast<int>(s->cinfo.image_height), min_w, min_h);
    jpeg_start_decompress(&s->cinfo);

    const unsigned int w = s->cinfo.output_width;
    pixels* px = &out->px;
    px->width = static_cast<int>(w);
    px->height = static_cast<int>(s->cinfo.output_height);
    px->channels = out->grey ? 1 : 3;
    const std::size_t stride = std::size_t{w} * static_cast<unsigned>(px->channels);
    px->data.resize(stride * s->cinfo.output_height);
    if (cmyk) s->cmyk_row.resize(std::size_t{w} * 4);
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
        std::uint8_t* dst = px->data.data() + std::size_t{s->cinfo.output_scanline} * stride;
        JSAMPROW row = cmyk ? s->cmyk_row.data() : dst;
        if (jpeg_read_scanlines(&s->cinfo, &row, 1) != 1) return false;
        if (cmyk && s->cmyk_transform)
            detail::run_transform(s->cmyk_transform, s->cmyk_row.data(), dst, w);
        else if (cmyk)
            cmyk_to_rgb(s->cmyk_row.data(), dst, w, inverted);
    }
    // A CMYK profile is used up (or useless without a transform); RGB and grey ones are still to apply.
    if (!cmyk) out->icc.assign(icc.begin(), icc.end());
    jpeg_finish_decompress(&s->cinfo);
    return true;
}

result<detail::device_image> decode_jpeg(std::span<const std::uint8_t> data, int min_w, int min_h,
                                         std::span<const std::uint8_t> icc, const std::function<bool()>& stop) {
    auto state = std::make_unique<jpeg_decode_state>();
    state->stop = &stop;
    detail::device_image out;
    if (!jpeg_decode_into(state.get(), data, min_w, min_h, icc, &out)) {
        if (state->stopped) return error{errc::cancelled, "stopped at a safe point"};
        return corrupt("JPEG", state->message[0] ? state->message : "unexpected end of data");
    }
    return out;
}

// ---- PNG structure -------------------------------------------------------------------------

std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

struct png_chunks {
    bool has_trns = false;
};

// stb_image ignores chunk CRCs and so decodes damaged files (PngSuite's xcsn0g01, xhdn0g08) into
// garbage. Walking the chunks first costs one pass over the bytes and catches that.
result<png_chunks> check_png_chunks(std::span<const std::uint8_t> d) {
    png_chunks info;
    std::size_t pos = 8;
    while (true) {
        if (d.size() - pos < 12) return corrupt("PNG", "the file ends before the IEND chunk");
        const std::uint32_t len = be32(d.data() + pos);
        const std::string type(reinterpret_cast<const char*>(d.data() + pos + 4), 4);
        if (len > 0x7FFFFFFFu || d.size() - pos - 12 < len)
            return corrupt("PNG", "chunk '" + type + "' runs past the end of the file");
        if (detail::crc32(d.data() + pos + 4, len + 4) != be32(d.data() + pos + 8 + len))
            return corrupt("PNG", "CRC mismatch in chunk '" + type + "'");
        if (type == "tRNS") info.has_trns = true;
        if (type == "IEND") return info;
        pos += 12 + std::size_t{len};
    }
}

// ---- stb_image (PNG, GIF, BMP) ---------------------------------------------------------------

result<pixels> decode_stb(std::span<const std::uint8_t> data, format f, bool* grey) {
    const char* name = f == format::png ? "PNG" : f == format::gif ? "GIF" : "BMP";
    if (data.size() > INT_MAX) return corrupt(name, "file too large");
    const int len = static_cast<int>(data.size());
    bool alpha = false;
    if (f == format::png) {
        auto chunks = check_png_chunks(data);
        if (!chunks) return chunks.error();
        const std::uint8_t colour_type = data[25];  // IHDR is at a fixed place, read_header checked it
        alpha = colour_type == 4 || colour_type == 6 || chunks->has_trns;
        *grey = colour_type == 0 || colour_type == 4;
    } else if (f == format::gif) {
        alpha = true;  // transparency is only known per frame; stb always gives RGBA
    } else {
        // On failure stbi_load below reports the precise reason (stbi_info tries every format).
        int iw = 0, ih = 0, comp = 0;
        alpha = stbi_info_from_memory(data.data(), len, &iw, &ih, &comp) && (comp == 2 || comp == 4);
    }
    // Grey without alpha stays one channel until the pipeline has made it small (detail::expand_grey).
    const int req = alpha ? 4 : (*grey ? 1 : 3);
    int w = 0, h = 0, comp = 0;
    std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> img(
        stbi_load_from_memory(data.data(), len, &w, &h, &comp, req), &stbi_image_free);
    if (!img) return corrupt(name, stbi_failure_reason());
    pixels out{w, h, req, {}};
    out.data.assign(img.get(), img.get() + std::size_t(w) * std::size_t(h) * std::size_t(req));
    return out;
}

// ---- WebP ----------------------------------------------------------------------------------

std::uint32_t le(const std::uint8_t* p, int n) {
    std::uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

// Decodes a still WebP, or a raw frame bitstream (ALPH + VP8, or VP8L), at its own size.
result<pixels> decode_webp_still(std::span<const std::uint8_t> data) {
    WebPBitstreamFeatures features{};
    if (WebPGetFeatures(data.data(), data.size(), &features) != VP8_STATUS_OK)
        return corrupt("WebP", "libwebp could not parse the header");
    pixels out;
    out.width = features.width;
    out.height = features.height;
    out.channels = features.has_alpha ? 4 : 3;
    const int stride = out.width * out.channels;
    out.data.resize(std::size_t(stride) * std::size_t(out.height));
    const auto ok = out.channels == 4
                        ? WebPDecodeRGBAInto(data.data(), data.size(), out.data.data(), out.data.size(), stride)
                        : WebPDecodeRGBInto(data.data(), data.size(), out.data.data(), out.data.size(), stride);
    if (!ok) return corrupt("WebP", "libwebp could not decode the image data");
    return out;
}

// The simple libwebp API refuses animations. Like GIF, we take the first frame: find the first
// ANMF chunk, decode its bitstream and place it on a transparent canvas at its offset.
result<pixels> decode_webp_first_frame(std::span<const std::uint8_t> data, int canvas_w, int canvas_h) {
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
            if (x + w > canvas_w || y + h > canvas_h)
                return corrupt("WebP", "the first animation frame lies outside the canvas");
            // The frame's bitstream declares its own size, which decode_webp_still allocates for:
            // checked first, or a few hundred bytes could allocate gigabytes past max_pixels (fuzz).
            WebPBitstreamFeatures ff{};
            if (WebPGetFeatures(payload + 16, len - 16u, &ff) != VP8_STATUS_OK || ff.width != w || ff.height != h)
                return corrupt("WebP", "the first animation frame does not have its declared size");
            auto frame = decode_webp_still({payload + 16, len - 16u});
            if (!frame) return frame.error();
            if (frame->width != w || frame->height != h)
                return corrupt("WebP", "the first animation frame does not have its declared size");
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
    return corrupt("WebP", "animated image without a readable first frame");
}

result<pixels> decode_webp(std::span<const std::uint8_t> data) {
    WebPBitstreamFeatures features{};
    if (WebPGetFeatures(data.data(), data.size(), &features) != VP8_STATUS_OK)
        return corrupt("WebP", "libwebp could not parse the header");
    if (features.has_animation) return decode_webp_first_frame(data, features.width, features.height);
    return decode_webp_still(data);
}

}  // namespace

namespace detail {

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

std::optional<error> pixel_limit_error(const header_info& h, std::int64_t max_pixels) {
    const std::int64_t count = std::int64_t{h.width} * h.height;
    if (count <= max_pixels) return std::nullopt;
    return error{errc::too_many_pixels, "the image is " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                                            " = " + std::to_string(count) + " pixels, more than the limit of " +
                                            std::to_string(max_pixels)};
}

result<device_image> decode_device(std::span<const std::uint8_t> data, const header_info& header, int min_w,
                                   int min_h, const std::function<bool()>& stop) {
    metadata meta = read_metadata(data, header.fmt);
    if (swaps_sides(header.orientation)) std::swap(min_w, min_h);  // the decoder sees the stored sides
    device_image out;
    switch (header.fmt) {
        case format::jpeg: {
            auto r = decode_jpeg(data, min_w, min_h, meta.icc, stop);
            if (!r) return r.error();
            out = std::move(*r);
            break;
        }
        case format::webp: {
            auto r = decode_webp(data);
            if (!r) return r.error();
            out.px = std::move(*r);
            out.icc = std::move(meta.icc);
            break;
        }
        case format::png:
        case format::gif:
        case format::bmp: {
            auto r = decode_stb(data, header.fmt, &out.grey);
            if (!r) return r.error();
            out.px = std::move(*r);
            out.icc = std::move(meta.icc);
            break;
        }
        default:  // read_header refuses every other format
            return error{errc::internal, "no decoder for " + std::string(to_string(header.fmt))};
    }
    out.header = header;
    out.exif = std::move(meta.exif);
    return out;
}

}  // namespace detail

result<pixels> decode(std::span<const std::uint8_t> data, std::int64_t max_pixels, int min_width, int min_height) {
    auto header = read_header(data);
    if (!header) return header.error();
    // Decided from the header alone, before a single pixel buffer is allocated.
    if (auto e = detail::pixel_limit_error(*header, max_pixels)) return *e;
    auto dev = detail::decode_device(data, *header, min_width, min_height);
    if (!dev) return dev.error();
    dev->px = detail::expand_grey(std::move(dev->px));
    if (!dev->icc.empty()) convert_to_srgb(dev->px, dev->icc, dev->grey);
    return apply_orientation(std::move(dev->px), dev->header.orientation);
}

}  // namespace quickthumb::image
