// Decoding to 8-bit rows: libjpeg-turbo (with DCT shrink-on-load, streamed scanline by scanline) and
// stb_image for BMP here; PNG, GIF and WebP in their own files. decode_rows streams the pixels as
// stored into a row_sink; decode() collects them, converts to sRGB and orients them.
#include "internal.hpp"

#include <stb_image.h>

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

error corrupt(std::string_view fmt, std::string_view why) { return detail::corrupt_error(fmt, why); }

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
    std::vector<std::uint8_t> row;  // the scanline handed to the sink
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

// Nothing with a destructor is created in this frame; all state is reached through `s`, `out` and
// `sink` (whose row() must not longjmp: it does not call libjpeg). `icc` is the embedded profile:
// used here for CMYK only (RGB and grey are converted later, on fewer pixels).
bool jpeg_decode_into(jpeg_decode_state* s, std::span<const std::uint8_t> data, int min_w, int min_h,
                      std::span<const std::uint8_t> icc, detail::row_sink* sink, bool* icc_used, bool* grey) {
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
    *grey = s->cinfo.jpeg_color_space == JCS_GRAYSCALE;
    if (cmyk) {
        s->cmyk_transform = detail::srgb_transform(
            icc, inverted ? detail::colour_source::cmyk_inverted : detail::colour_source::cmyk);
    }
    // A CMYK profile is used up here (or useless without a transform); RGB and grey ones are applied later.
    *icc_used = cmyk;
    // Grey stays one channel until the pipeline has made it small (detail::expand_grey).
    s->cinfo.out_color_space = cmyk ? JCS_CMYK : *grey ? JCS_GRAYSCALE : JCS_RGB;
    s->cinfo.scale_num = 1;
    s->cinfo.scale_denom = static_cast<unsigned>(detail::jpeg_scale_denom(
        static_cast<int>(s->cinfo.image_width), static_cast<int>(s->cinfo.image_height), min_w, min_h));
    jpeg_start_decompress(&s->cinfo);

    const unsigned int w = s->cinfo.output_width;
    const int channels = *grey ? 1 : 3;
    s->row.resize(std::size_t{w} * static_cast<unsigned>(channels));
    if (cmyk) s->cmyk_row.resize(std::size_t{w} * 4);
    sink->begin(static_cast<int>(w), static_cast<int>(s->cinfo.output_height), channels);
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
        JSAMPROW row = cmyk ? s->cmyk_row.data() : s->row.data();
        if (jpeg_read_scanlines(&s->cinfo, &row, 1) != 1) return false;
        if (cmyk && s->cmyk_transform)
            detail::run_transform(s->cmyk_transform, s->cmyk_row.data(), s->row.data(), w);
        else if (cmyk)
            cmyk_to_rgb(s->cmyk_row.data(), s->row.data(), w, inverted);
        if (!sink->row(s->row.data())) {
            s->stopped = true;
            return false;
        }
    }
    jpeg_finish_decompress(&s->cinfo);
    return true;
}

// ---- BMP (stb_image) ---------------------------------------------------------------------------

// stb decodes a BMP whole (the memory estimate counts it so); its buffer is streamed as it is.
result<void> decode_bmp(std::span<const std::uint8_t> data, detail::row_sink& sink) {
    if (data.size() > INT_MAX) return corrupt("BMP", "file too large");
    const int len = static_cast<int>(data.size());
    // On failure stbi_load below reports the precise reason (stbi_info tries every format).
    int iw = 0, ih = 0, comp = 0;
    const bool alpha = stbi_info_from_memory(data.data(), len, &iw, &ih, &comp) && (comp == 2 || comp == 4);
    const int req = alpha ? 4 : 3;
    int w = 0, h = 0;
    std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> img(
        stbi_load_from_memory(data.data(), len, &w, &h, &comp, req), &stbi_image_free);
    if (!img) return corrupt("BMP", stbi_failure_reason());
    return detail::stream_rows(img.get(), w, h, req, sink);
}

// Collects every row (for decode(), which returns the whole image).
class collect_sink final : public detail::row_sink {
public:
    explicit collect_sink(pixels& out) : out_(out) {}
    void begin(int width, int height, int channels) override {
        out_ = pixels{width, height, channels, {}};
        row_bytes_ = std::size_t(width) * channels;
        out_.data.resize(row_bytes_ * std::size_t(height));
    }
    bool row(const std::uint8_t* data) override {
        if (y_ < out_.height) std::memcpy(out_.data.data() + std::size_t(y_++) * row_bytes_, data, row_bytes_);
        return true;
    }

private:
    pixels& out_;
    std::size_t row_bytes_ = 0;
    int y_ = 0;
};

}  // namespace

namespace detail {

error corrupt_error(std::string_view fmt, std::string_view why) {
    return error{errc::corrupt_image, "corrupt or truncated " + std::string(fmt) + ": " + std::string(why)};
}

error stopped_error() { return error{errc::cancelled, "stopped at a safe point"}; }

int jpeg_scale_denom(int w, int h, int min_w, int min_h) {
    if (min_w <= 0 && min_h <= 0) return 1;
    for (int denom : {8, 4, 2}) {
        const int sw = static_cast<int>((static_cast<unsigned>(w) + denom - 1) / denom);
        const int sh = static_cast<int>((static_cast<unsigned>(h) + denom - 1) / denom);
        if ((min_w <= 0 || sw >= min_w) && (min_h <= 0 || sh >= min_h)) return denom;
    }
    return 1;
}

result<void> stream_rows(const std::uint8_t* rows, int width, int height, int channels, row_sink& sink) {
    sink.begin(width, height, channels);
    const std::size_t stride = std::size_t(width) * channels;
    for (int y = 0; y < height; ++y)
        if (!sink.row(rows + std::size_t(y) * stride)) return stopped_error();
    return {};
}

result<void> decode_jpeg_rows(std::span<const std::uint8_t> data, int min_w, int min_h,
                              std::span<const std::uint8_t> icc, row_sink& sink, const std::function<bool()>& stop,
                              bool* icc_used, bool* grey) {
    auto state = std::make_unique<jpeg_decode_state>();
    state->stop = &stop;
    if (!jpeg_decode_into(state.get(), data, min_w, min_h, icc, &sink, icc_used, grey)) {
        if (state->stopped) return stopped_error();
        return corrupt("JPEG", state->message[0] ? state->message : "unexpected end of data");
    }
    return {};
}

result<void> decode_bmp_rows(std::span<const std::uint8_t> data, row_sink& sink) { return decode_bmp(data, sink); }

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

result<decode_info> decode_rows(std::span<const std::uint8_t> data, const header_info& header, int min_w, int min_h,
                                row_sink& sink, const std::function<bool()>& stop) {
    metadata meta = read_metadata(data, header.fmt);
    if (swaps_sides(header.orientation)) std::swap(min_w, min_h);  // the decoder sees the stored sides
    decode_info out;
    out.header = header;
    out.exif = std::move(meta.exif);
    out.icc = std::move(meta.icc);
    result<void> r = error{errc::internal, "no decoder for " + std::string(to_string(header.fmt))};
    switch (header.fmt) {
        case format::jpeg: {
            bool icc_used = false;
            r = decode_jpeg_rows(data, min_w, min_h, out.icc, sink, stop, &icc_used, &out.grey);
            if (icc_used) out.icc.clear();
            break;
        }
        case format::png: r = decode_png_rows(data, sink, &out.grey); break;
        case format::gif: r = decode_gif_rows(data, sink); break;
        case format::webp: r = decode_webp_rows(data, min_w, min_h, sink); break;
        case format::bmp: r = decode_bmp_rows(data, sink); break;
        default: break;  // read_header refuses every other format
    }
    if (!r) return r.error();
    return out;
}

}  // namespace detail

result<pixels> decode(std::span<const std::uint8_t> data, std::int64_t max_pixels, int min_width, int min_height) {
    auto header = read_header(data);
    if (!header) return header.error();
    // Decided from the header alone, before a single pixel buffer is allocated.
    if (auto e = detail::pixel_limit_error(*header, max_pixels)) return *e;
    pixels px;
    collect_sink sink(px);
    auto info = detail::decode_rows(data, *header, min_width, min_height, sink);
    if (!info) return info.error();
    px = detail::expand_grey(std::move(px));
    if (!info->icc.empty()) convert_to_srgb(px, info->icc, info->grey);
    return apply_orientation(std::move(px), info->header.orientation);
}

}  // namespace quickthumb::image
