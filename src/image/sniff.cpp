// Format detection from magic bytes, and header-only dimension reading.
#include "internal.hpp"

#include <stb_image.h>
#include <webp/decode.h>

#include <algorithm>
#include <climits>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>
#include <memory>
#include <utility>

#include <jpeglib.h>
#include <jerror.h>

namespace quickthumb::image {
namespace {

bool starts_with(std::span<const std::uint8_t> d, std::size_t at, std::string_view magic) {
    if (d.size() < at + magic.size()) return false;
    return std::memcmp(d.data() + at, magic.data(), magic.size()) == 0;
}

// "BM" alone is too weak (plenty of text starts with it): also require a known DIB header size.
bool is_bmp(std::span<const std::uint8_t> d) {
    if (!starts_with(d, 0, "BM") || d.size() < 18) return false;
    const std::uint32_t dib = d[14] | d[15] << 8 | d[16] << 16 | std::uint32_t(d[17]) << 24;
    return dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124;
}

// ISO-BMFF: "ftyp" box at offset 4; the major brand, else the compatible brands, name the format.
format sniff_isobmff(std::span<const std::uint8_t> d) {
    if (!starts_with(d, 4, "ftyp") || d.size() < 12) return format::unknown;
    auto brand_format = [](std::string_view b) {
        if (b == "avif" || b == "avis") return format::avif;
        if (b == "heic" || b == "heix" || b == "heim" || b == "heis" || b == "hevc" || b == "hevx")
            return format::heic;
        return format::unknown;
    };
    const std::string_view major(reinterpret_cast<const char*>(d.data() + 8), 4);
    if (auto f = brand_format(major); f != format::unknown) return f;
    const std::size_t box = std::min<std::size_t>(d.size(), d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3]);
    bool generic = major == "mif1" || major == "msf1";
    for (std::size_t at = 16; at + 4 <= box; at += 4) {
        const std::string_view b(reinterpret_cast<const char*>(d.data() + at), 4);
        if (auto f = brand_format(b); f != format::unknown) return f;
        generic = generic || b == "mif1" || b == "msf1";
    }
    return generic ? format::heic : format::unknown;  // a bare HEIF container
}

format sniff_svg(std::span<const std::uint8_t> d) {
    std::string_view text(reinterpret_cast<const char*>(d.data()), std::min<std::size_t>(d.size(), 1024));
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return format::unknown;
    text.remove_prefix(first);
    if (text.starts_with("<svg")) return format::svg;
    // An XML prolog, doctype or comment may come first; the root element must still be <svg.
    if ((text.starts_with("<?xml") || text.starts_with("<!")) && text.find("<svg") != std::string_view::npos)
        return format::svg;
    return format::unknown;
}

std::string_view display_name(format f) {
    switch (f) {
        case format::jpeg: return "JPEG";
        case format::png: return "PNG";
        case format::gif: return "GIF";
        case format::bmp: return "BMP";
        case format::webp: return "WebP";
        case format::tiff: return "TIFF";
        case format::svg: return "SVG";
        case format::heic: return "HEIC";
        case format::avif: return "AVIF";
        case format::ico: return "ICO";
        case format::psd: return "PSD";
        case format::unknown: break;
    }
    return "unknown";
}

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp out.
struct jpeg_header_state {
    jpeg_decompress_struct cinfo{};
    jpeg_error_mgr err{};
    std::jmp_buf jump{};
    char message[JMSG_LENGTH_MAX]{};
    int code = 0;  // libjpeg's msg_code of the failure
    ~jpeg_header_state() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed struct
};

[[noreturn]] void jpeg_header_error_exit(j_common_ptr c) {
    auto* s = static_cast<jpeg_header_state*>(c->client_data);
    s->code = c->err->msg_code;
    (*c->err->format_message)(c, s->message);
    std::longjmp(s->jump, 1);
}

// Nothing with a destructor lives in this frame, so a longjmp out of libjpeg skips nothing.
bool jpeg_dimensions(jpeg_header_state* s, const std::uint8_t* data, std::size_t size, int* w, int* h,
                     header_layout* layout) {
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = jpeg_header_error_exit;
    s->err.output_message = [](j_common_ptr) {};  // warnings are irrelevant for the header
    s->cinfo.client_data = s;
    if (setjmp(s->jump)) return false;
    jpeg_create_decompress(&s->cinfo);
    jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&s->cinfo, TRUE);
    *w = static_cast<int>(s->cinfo.image_width);
    *h = static_cast<int>(s->cinfo.image_height);
    // What the decoder will hold: a file of several scans (progressive, or components sent
    // apart) keeps every DCT coefficient, each component's block grid rounded up to its sampling.
    const jpeg_decompress_struct& c = s->cinfo;
    layout->components = c.num_components;
    layout->channels = c.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    layout->whole_frame = jpeg_has_multiple_scans(&s->cinfo);
    if (layout->whole_frame) {
        std::int64_t blocks = 0;
        for (int i = 0; i < c.num_components; ++i) {
            const jpeg_component_info& ci = c.comp_info[i];
            auto round_up = [](std::int64_t v, std::int64_t m) { return m > 0 ? (v + m - 1) / m * m : v; };
            blocks += round_up(ci.width_in_blocks, ci.h_samp_factor) * round_up(ci.height_in_blocks, ci.v_samp_factor);
        }
        layout->coefficient_bytes = blocks * std::int64_t{sizeof(JBLOCK)};
    }
    return true;
}

std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

// From IHDR and the chunks before the image data: the channels libspng is asked for, interlace.
header_layout png_layout(std::span<const std::uint8_t> d) {
    header_layout l;
    const std::uint8_t depth = d[24], type = d[25];
    l.whole_frame = d[28] != 0;
    bool trns = false;
    for (std::size_t pos = 8; d.size() - pos >= 12;) {
        const std::uint32_t len = be32(d.data() + pos);
        if (std::memcmp(d.data() + pos + 4, "tRNS", 4) == 0) trns = true;
        if (std::memcmp(d.data() + pos + 4, "IDAT", 4) == 0 || len > d.size() - pos - 12) break;
        pos += 12 + std::size_t{len};
    }
    const bool alpha = type == 4 || type == 6 || trns, grey = type == 0 || type == 4;
    l.channels = alpha ? 4 : grey ? 1 : 3;
    l.bit_depth = depth;
    return l;
}

error corrupt(format f, std::string_view why) {
    return error{errc::corrupt_image,
                 "corrupt or truncated " + std::string(display_name(f)) + " header: " + std::string(why)};
}

}  // namespace

std::string_view to_string(format f) noexcept {
    switch (f) {
        case format::jpeg: return "jpeg";
        case format::png: return "png";
        case format::gif: return "gif";
        case format::bmp: return "bmp";
        case format::webp: return "webp";
        case format::tiff: return "tiff";
        case format::svg: return "svg";
        case format::heic: return "heic";
        case format::avif: return "avif";
        case format::ico: return "ico";
        case format::psd: return "psd";
        case format::unknown: break;
    }
    return "unknown";
}

format sniff(std::span<const std::uint8_t> d) noexcept {
    if (starts_with(d, 0, "\xFF\xD8\xFF")) return format::jpeg;
    if (starts_with(d, 0, "\x89PNG\r\n\x1A\n")) return format::png;
    if (starts_with(d, 0, "GIF87a") || starts_with(d, 0, "GIF89a")) return format::gif;
    if (starts_with(d, 0, "RIFF") && starts_with(d, 8, "WEBP")) return format::webp;
    if (starts_with(d, 0, std::string_view("II*\0", 4)) || starts_with(d, 0, std::string_view("MM\0*", 4)) ||
        starts_with(d, 0, std::string_view("II+\0", 4)) || starts_with(d, 0, std::string_view("MM\0+", 4)))
        return format::tiff;  // classic and BigTIFF
    if (starts_with(d, 0, "8BPS")) return format::psd;
    // Before ICO: an "ftyp" box of exactly 256 bytes also starts with 00 00 01 00.
    if (auto f = sniff_isobmff(d); f != format::unknown) return f;
    if (starts_with(d, 0, std::string_view("\0\0\1\0", 4))) return format::ico;
    if (is_bmp(d)) return format::bmp;
    return sniff_svg(d);
}

std::optional<error> unsupported_input(format f) {
    constexpr std::string_view supported = " (supported: JPEG, PNG, WebP, GIF, BMP)";
    switch (f) {
        case format::jpeg:
        case format::png:
        case format::webp:
        case format::gif:
        case format::bmp: return std::nullopt;
        case format::unknown: return error{errc::not_an_image, "the file is not an image" + std::string(supported)};
        default:
            return error{errc::unsupported_format,
                         std::string(display_name(f)) + " images are not supported" + std::string(supported)};
    }
}

result<header_info> read_header(std::span<const std::uint8_t> data) {
    header_info info;
    info.fmt = sniff(data);
    if (auto refused = unsupported_input(info.fmt)) return *refused;
    switch (info.fmt) {
        case format::jpeg: {
            auto state = std::make_unique<jpeg_header_state>();
            if (!jpeg_dimensions(state.get(), data.data(), data.size(), &info.width, &info.height, &info.layout)) {
                // Lossless/hierarchical JPEG (SOF3, SOF5..7) is valid but beyond libjpeg-turbo 2.x.
                if (state->code == JERR_SOF_UNSUPPORTED || state->code == JERR_ARITH_NOTIMPL)
                    return error{errc::unsupported_format,
                                 std::string("this JPEG variant is not supported: ") + state->message};
                return corrupt(info.fmt, state->message);
            }
            break;
        }
        case format::webp:
            if (!WebPGetInfo(data.data(), data.size(), &info.width, &info.height))
                return corrupt(info.fmt, "libwebp could not parse it");
            info.layout = detail::webp_layout(data);
            break;
        case format::png:
            // IHDR by hand: stbi_info refuses PNGs over 1 GB of pixels as "too large", and such a
            // header must be reported as too_many_pixels, not as corrupt.
            if (data.size() < 33 || be32(data.data() + 8) != 13 || std::memcmp(data.data() + 12, "IHDR", 4) != 0)
                return corrupt(info.fmt, "the IHDR chunk is missing");
            if (be32(data.data() + 16) > INT_MAX || be32(data.data() + 20) > INT_MAX)
                return corrupt(info.fmt, "impossible dimensions");
            info.width = static_cast<int>(be32(data.data() + 16));
            info.height = static_cast<int>(be32(data.data() + 20));
            info.layout = png_layout(data);
            break;
        case format::gif:
        case format::bmp: {
            if (data.size() > INT_MAX) return corrupt(info.fmt, "file too large");
            int comp = 0;
            if (!stbi_info_from_memory(data.data(), static_cast<int>(data.size()), &info.width, &info.height,
                                       &comp))
                return corrupt(info.fmt, stbi_failure_reason());
            if (info.fmt == format::bmp) {
                info.layout.channels = comp == 2 || comp == 4 ? 4 : 3;
                info.layout.whole_frame = true;  // stb_image decodes it whole
            } else {
                info.layout.channels = 4;
                if (auto frame = detail::read_gif_frame(data)) {
                    info.layout.whole_frame = frame->interlaced;
                    info.layout.frame_width = frame->width;
                    info.layout.frame_height = frame->height;
                }  // else the decoder reports what is wrong
            }
            break;
        }
        default: break;  // refused by unsupported_input above
    }
    if (info.width <= 0 || info.height <= 0) return corrupt(info.fmt, "zero width or height");
    // The orientation decides which side is which once displayed; the ICC profile is not needed here.
    info.orientation = read_metadata(data, info.fmt, false).orientation;
    if (info.orientation >= 5) std::swap(info.width, info.height);
    return info;
}

}  // namespace quickthumb::image
