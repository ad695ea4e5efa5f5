// libFuzzer target: the metadata readers (src/image/exif.cpp): EXIF orientation and the upright
// copy of an EXIF block, and the JPEG / PNG / WebP metadata walkers (EXIF and ICC chunks).
#include "quickthumb/image.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace image = quickthumb::image;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    const int o = image::exif_orientation(in);
    if (o < 1 || o > 8) std::abort();
    const auto upright = image::exif_upright(in);
    if (upright.size() != size) std::abort();  // a copy, with at most one value changed
    for (auto f : {image::format::jpeg, image::format::png, image::format::webp}) {
        const auto m = image::read_metadata(in, f);
        if (m.orientation < 1 || m.orientation > 8) std::abort();
        if (!m.exif.empty()) (void)image::exif_upright(m.exif);
    }
    // Whatever the bytes sniff as (a real file's metadata is read that way).
    (void)image::read_metadata(in, image::sniff(in), false);
    return 0;
}
