// The one translation unit that compiles the stb implementations (libstb is not linked).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"

// We sniff formats ourselves and hand stb only PNG, GIF and BMP: leave the other loaders out.
#define STBI_NO_HDR
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_PNM
#define STBI_NO_TGA
// stb's own sanity bound; the real limit is --max-pixels, checked from the header before decoding.
#define STBI_MAX_DIMENSIONS (1 << 24)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#pragma GCC diagnostic pop

namespace {
// stb_image_write's level is a global (default 8); set it once here, before any thread can encode,
// rather than racing on it per call. 6 is zlib's default: much faster for a negligible size cost.
[[maybe_unused]] const bool png_level_set = (stbi_write_png_compression_level = 6, true);
}  // namespace
