#include "support/image_files.hpp"

#include "support/gif_writer.hpp"

#include <spng.h>
#include <stb_image_write.h>
#include <webp/encode.h>

#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <jpeglib.h>

#include <cstring>
#include <random>
#include <stdexcept>

namespace qt_test {
namespace img = quickthumb::image;

img::pixels photo_like(int w, int h, int channels, unsigned seed) {
    img::pixels p{w, h, channels, bytes(std::size_t(w) * h * channels)};
    std::mt19937 rng(seed);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* px = &p.data[(std::size_t(y) * w + x) * channels];
            const int n = static_cast<int>(rng() % 24);
            px[0] = static_cast<std::uint8_t>(std::min(255, x * 230 / std::max(w - 1, 1) + n));
            if (channels >= 3) {
                px[1] = static_cast<std::uint8_t>(std::min(255, y * 230 / std::max(h - 1, 1) + n));
                px[2] = static_cast<std::uint8_t>(((x / 37 + y / 53) % 2) ? 200 - n : 60 + n);
            }
            if (channels == 4) px[3] = static_cast<std::uint8_t>(128 + ((x + y) % 128));
        }
    return p;
}

bytes jpeg_file(const img::pixels& p, const jpeg_spec& spec) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);  // exits on error: acceptable for known-good pixels in a test
    jpeg_create_compress(&cinfo);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &out, &size);
    cinfo.image_width = static_cast<JDIMENSION>(p.width);
    cinfo.image_height = static_cast<JDIMENSION>(p.height);
    cinfo.input_components = spec.grey ? 1 : 3;
    cinfo.in_color_space = spec.grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, spec.quality, TRUE);
    if (spec.progressive || spec.scan_bomb) jpeg_simple_progression(&cinfo);
    std::vector<jpeg_scan_info> scans;
    if (spec.scan_bomb && !spec.grey) {  // DC, then each AC coefficient of each component alone, 4 steps each
        scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
        for (int c = 0; c < 3; ++c)
            for (int k = 1; k < 64; ++k)
                for (int al = 3; al >= 0; --al) scans.push_back({1, {c, 0, 0, 0}, k, k, al == 3 ? 0 : al + 1, al});
        cinfo.scan_info = scans.data();
        cinfo.num_scans = static_cast<int>(scans.size());
    }
    jpeg_start_compress(&cinfo, TRUE);
    if (spec.orientation > 0) {
        // "Exif\0\0" + a little-endian TIFF header + IFD0 with one entry: Orientation (SHORT).
        const std::uint8_t o = static_cast<std::uint8_t>(spec.orientation);
        const std::uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                                     0x12, 0x01, 3, 0, 1, 0, 0, 0, o, 0, 0, 0, 0, 0, 0, 0};
        jpeg_write_marker(&cinfo, JPEG_APP0 + 1, exif, sizeof exif);
    }
    std::vector<std::uint8_t> row(std::size_t(p.width) * cinfo.input_components);
    while (cinfo.next_scanline < cinfo.image_height) {
        const std::uint8_t* src = p.data.data() + std::size_t(cinfo.next_scanline) * p.width * p.channels;
        for (int x = 0; x < p.width; ++x)
            for (int c = 0; c < cinfo.input_components; ++c) row[std::size_t(x) * cinfo.input_components + c] = src[x * p.channels + c];
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    bytes result(out, out + size);
    std::free(out);
    return result;
}

bytes png_file(const img::pixels& p, const png_spec& spec) {
    spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, 1);
    spng_ihdr ihdr{};
    ihdr.width = static_cast<std::uint32_t>(p.width);
    ihdr.height = static_cast<std::uint32_t>(p.height);
    ihdr.bit_depth = spec.sixteen_bit ? 16 : 8;
    ihdr.color_type = p.channels == 4 ? SPNG_COLOR_TYPE_TRUECOLOR_ALPHA
                      : p.channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR
                                        : SPNG_COLOR_TYPE_GRAYSCALE;
    ihdr.interlace_method = spec.interlaced ? 1 : 0;
    spng_set_ihdr(ctx, &ihdr);
    // 16-bit samples in host order (SPNG_FMT_PNG is host-endian): each 8-bit value v as v * 257.
    bytes data;
    if (spec.sixteen_bit) {
        data.resize(p.data.size() * 2);
        for (std::size_t i = 0; i < p.data.size(); ++i) {
            const std::uint16_t v = static_cast<std::uint16_t>(p.data[i] * 257);
            std::memcpy(&data[i * 2], &v, 2);
        }
    }
    const bytes& src = spec.sixteen_bit ? data : p.data;
    int e = spng_encode_image(ctx, src.data(), src.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    std::size_t len = 0;
    void* out = e == 0 ? spng_get_png_buffer(ctx, &len, &e) : nullptr;
    spng_ctx_free(ctx);
    if (!out) throw std::runtime_error(std::string("png_file: ") + spng_strerror(e));
    bytes result(static_cast<std::uint8_t*>(out), static_cast<std::uint8_t*>(out) + len);
    std::free(out);
    return result;
}

bytes webp_file(const img::pixels& p, const webp_spec& spec) {
    WebPConfig config;
    WebPConfigInit(&config);
    config.lossless = spec.lossless;
    config.quality = static_cast<float>(spec.quality);
    config.method = spec.lossless ? 0 : 2;  // fast: these files test decoders
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.width = p.width;
    pic.height = p.height;
    pic.use_argb = 1;
    WebPMemoryWriter writer;
    WebPMemoryWriterInit(&writer);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &writer;
    const int stride = p.width * p.channels;
    const bool ok = (p.channels == 4 ? WebPPictureImportRGBA(&pic, p.data.data(), stride)
                                     : WebPPictureImportRGB(&pic, p.data.data(), stride)) &&
                    WebPEncode(&config, &pic);
    bytes result(writer.mem, writer.mem + writer.size);
    WebPPictureFree(&pic);
    WebPMemoryWriterClear(&writer);
    if (!ok) throw std::runtime_error("webp_file: encoding failed");
    return result;
}

bytes bmp_file(const img::pixels& p) {
    bytes out;
    stbi_write_bmp_to_func(
        [](void* ctx, void* data, int size) {
            auto* o = static_cast<bytes*>(ctx);
            o->insert(o->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
        },
        &out, p.width, p.height, p.channels, p.data.data());
    if (out.empty()) throw std::runtime_error("bmp_file: encoding failed");
    return out;
}

bytes gif_file(const img::pixels& p, bool interlaced) {
    gif_spec s;
    s.canvas_width = s.width = p.width;
    s.canvas_height = s.height = p.height;
    s.interlaced = interlaced;
    s.palette = ramp_palette();
    s.indexes.resize(std::size_t(p.width) * p.height);
    for (std::size_t i = 0; i < s.indexes.size(); ++i) s.indexes[i] = p.data[i * p.channels];
    return write_gif(s);
}

}  // namespace qt_test
