// Encoders: JPEG with libjpeg-turbo, PNG with libspng, WebP with libwebp. None writes
// metadata: the pixels are sRGB and upright, which is what an untagged image means.
#include "quickthumb/image.hpp"

#include <spng.h>
#include <webp/encode.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>

#include <jpeglib.h>

namespace quickthumb::image {
namespace {

std::optional<error> check_pixels(const pixels& p) {
    if (p.width <= 0 || p.height <= 0 || (p.channels != 3 && p.channels != 4) ||
        p.data.size() != std::size_t(p.width) * std::size_t(p.height) * std::size_t(p.channels))
        return error{errc::internal, "cannot encode a malformed pixel buffer"};
    return std::nullopt;
}

// Caller-owned so that a longjmp out of libjpeg skips no destructor; see jpeg_encode_into.
struct jpeg_encode_state {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    std::jmp_buf jump{};
    char message[JMSG_LENGTH_MAX]{};
    unsigned char* out = nullptr;  // malloc'ed by jpeg_mem_dest
    unsigned long out_size = 0;
    std::vector<std::uint8_t> row;  // an RGBA row flattened to RGB
    ~jpeg_encode_state() {
        jpeg_destroy_compress(&cinfo);
        std::free(out);
    }
};

[[noreturn]] void jpeg_encode_error_exit(j_common_ptr c) {
    auto* s = static_cast<jpeg_encode_state*>(c->client_data);
    (*c->err->format_message)(c, s->message);
    std::longjmp(s->jump, 1);
}

// Straight alpha composited over the background: out = a*c + (1-a)*bg, in sRGB values like
// browsers do.
void flatten(const std::uint8_t* in, std::uint8_t* out, int width, rgb bg) {
    const unsigned back[3] = {bg.r, bg.g, bg.b};
    for (int i = 0; i < width; ++i, in += 4, out += 3) {
        const unsigned a = in[3], inv = 255 - a;
        for (int k = 0; k < 3; ++k) out[k] = static_cast<std::uint8_t>((in[k] * a + back[k] * inv + 127) / 255);
    }
}

// No object with a destructor is created in this frame.
bool jpeg_encode_into(jpeg_encode_state* s, const pixels* p, const jpeg_options* opts) {
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = jpeg_encode_error_exit;
    s->cinfo.client_data = s;
    if (setjmp(s->jump)) return false;
    jpeg_create_compress(&s->cinfo);
    jpeg_mem_dest(&s->cinfo, &s->out, &s->out_size);
    s->cinfo.image_width = static_cast<JDIMENSION>(p->width);
    s->cinfo.image_height = static_cast<JDIMENSION>(p->height);
    s->cinfo.input_components = 3;
    s->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&s->cinfo);
    const int quality = std::clamp(opts->quality, 1, 100);
    jpeg_set_quality(&s->cinfo, quality, TRUE);
    s->cinfo.optimize_coding = TRUE;
    // 4:2:0 like libvips, except at high quality where chroma detail is what was paid for.
    const int sampling = quality >= 90 ? 1 : 2;
    s->cinfo.comp_info[0].h_samp_factor = sampling;
    s->cinfo.comp_info[0].v_samp_factor = sampling;
    if (opts->progressive) jpeg_simple_progression(&s->cinfo);
    jpeg_start_compress(&s->cinfo, TRUE);
    if (p->channels == 4) s->row.resize(std::size_t(p->width) * 3);
    const std::size_t stride = std::size_t(p->width) * p->channels;
    while (s->cinfo.next_scanline < s->cinfo.image_height) {
        // libjpeg takes non-const rows but does not write to them.
        auto* src = const_cast<std::uint8_t*>(p->data.data() + s->cinfo.next_scanline * stride);
        if (p->channels == 4) flatten(src, s->row.data(), p->width, opts->background);
        JSAMPROW row = p->channels == 4 ? s->row.data() : src;
        jpeg_write_scanlines(&s->cinfo, &row, 1);
    }
    jpeg_finish_compress(&s->cinfo);
    return true;
}

}  // namespace

result<std::vector<std::uint8_t>> encode_jpeg(const pixels& p, int quality) {
    jpeg_options opts;
    opts.quality = quality;
    return encode_jpeg(p, opts);
}

result<std::vector<std::uint8_t>> encode_jpeg(const pixels& p, const jpeg_options& opts) {
    if (auto bad = check_pixels(p)) return *bad;
    if (p.width > JPEG_MAX_DIMENSION || p.height > JPEG_MAX_DIMENSION)
        return error{errc::invalid_option, "the image is too large for JPEG (at most 65500 pixels a side)"};
    auto state = std::make_unique<jpeg_encode_state>();
    if (!jpeg_encode_into(state.get(), &p, &opts))
        return error{errc::internal, std::string("JPEG encoding failed: ") + state->message};
    return std::vector<std::uint8_t>(state->out, state->out + state->out_size);
}

// libspng, row by row: zlib's state and two scanlines beside the output (stb_image_write kept a
// filtered copy of the whole image and a hash chain of 8 bytes per byte of it).
result<std::vector<std::uint8_t>> encode_png(const pixels& p) {
    if (auto bad = check_pixels(p)) return *bad;
    struct ctx_free {
        void operator()(spng_ctx* c) const { spng_ctx_free(c); }
    };
    std::unique_ptr<spng_ctx, ctx_free> ctx(spng_ctx_new(SPNG_CTX_ENCODER));
    if (!ctx) throw std::bad_alloc();
    auto failed = [](int e) { return error{errc::internal, std::string("PNG encoding failed: ") + spng_strerror(e)}; };
    spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
    spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, 6);  // zlib's default: fast, a negligible size cost
    spng_ihdr ihdr{};
    ihdr.width = static_cast<std::uint32_t>(p.width);
    ihdr.height = static_cast<std::uint32_t>(p.height);
    ihdr.bit_depth = 8;
    ihdr.color_type = p.channels == 4 ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA : SPNG_COLOR_TYPE_TRUECOLOR;
    if (int e = spng_set_ihdr(ctx.get(), &ihdr)) return failed(e);
    if (int e = spng_encode_image(ctx.get(), nullptr, 0, SPNG_FMT_PNG, SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE))
        return failed(e);
    const std::size_t stride = std::size_t(p.width) * p.channels;
    int e = 0;
    for (int y = 0; y < p.height && e == 0; ++y) e = spng_encode_row(ctx.get(), p.data.data() + std::size_t(y) * stride, stride);
    if (e != SPNG_EOI) return failed(e);
    std::size_t len = 0;
    int err = 0;
    std::unique_ptr<std::uint8_t, decltype(&std::free)> png(
        static_cast<std::uint8_t*>(spng_get_png_buffer(ctx.get(), &len, &err)), &std::free);
    if (!png) return failed(err);
    return std::vector<std::uint8_t>(png.get(), png.get() + len);
}

result<std::vector<std::uint8_t>> encode_webp(const pixels& p, int quality) {
    if (auto bad = check_pixels(p)) return *bad;
    if (p.width > WEBP_MAX_DIMENSION || p.height > WEBP_MAX_DIMENSION)
        return error{errc::invalid_option, "the image is too large for WebP (at most 16383 pixels a side)"};
    WebPConfig config;
    if (!WebPConfigInit(&config)) return error{errc::internal, "libwebp version mismatch"};
    config.quality = static_cast<float>(std::clamp(quality, 1, 100));
    config.method = 4;  // libwebp's default speed/size trade-off, like libvips' effort 4
    WebPPicture pic;
    if (!WebPPictureInit(&pic)) return error{errc::internal, "libwebp version mismatch"};
    pic.width = p.width;
    pic.height = p.height;
    pic.use_argb = 1;
    WebPMemoryWriter writer;
    WebPMemoryWriterInit(&writer);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &writer;
    struct cleanup {
        WebPPicture* pic;
        WebPMemoryWriter* writer;
        ~cleanup() {
            WebPPictureFree(pic);
            WebPMemoryWriterClear(writer);
        }
    } guard{&pic, &writer};
    const int stride = p.width * p.channels;
    const int imported = p.channels == 4 ? WebPPictureImportRGBA(&pic, p.data.data(), stride)
                                         : WebPPictureImportRGB(&pic, p.data.data(), stride);
    if (!imported) return error{errc::internal, "WebP encoding failed (out of memory)"};
    if (!WebPEncode(&config, &pic))
        return error{errc::internal, "WebP encoding failed (libwebp error " + std::to_string(pic.error_code) + ")"};
    return std::vector<std::uint8_t>(writer.mem, writer.mem + writer.size);
}

}  // namespace quickthumb::image
