// Black-box tests of `quickthumb thumb`: the real binary on synthetic images in a temp directory.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/catch_result.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <cstdio>  // jpeglib.h needs FILE
#include <jpeglib.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace img = quickthumb::image;
namespace fs = std::filesystem;

namespace {

using qt_test::run_result;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `quickthumb thumb ARGS...` to completion.
run_result run_thumb(const std::vector<std::string>& thumb_args) {
    std::vector<std::string> args = {QT_BINARY_PATH, "thumb"};
    args.insert(args.end(), thumb_args.begin(), thumb_args.end());
    return qt_test::run_process(args);
}

using qt_test::gradient;

void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
    std::ofstream o(p, std::ios::binary);
    o.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(o.good());
}

fs::path make_jpeg(const fs::path& p, int w, int h) {
    auto bytes = img::encode_jpeg(gradient(w, h, 3), 90);
    REQUIRE(bytes);
    write_bytes(p, *bytes);
    return p;
}

fs::path make_png(const fs::path& p, int w, int h) {
    auto bytes = img::encode_png(gradient(w, h, 4));
    REQUIRE(bytes);
    write_bytes(p, *bytes);
    return p;
}

// Format and size of an output file, read back with the engine's header reader.
img::header_info header_of(const fs::path& p) {
    auto data = qt_test::read_file(p);
    auto h = img::read_header(data);
    INFO(p.string());
    REQUIRE(h);
    return *h;
}

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

TEST_CASE("cli: outputs follow the pattern and its extension", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_jpeg(dir.path() / "a.jpg", 400, 300);
    const auto b = make_png(dir.path() / "b.png", 300, 600);
    const auto out = dir.path() / "out";  // does not exist: created, as documented

    auto r = run_thumb({a.string(), b.string(), "-s", "100", "-o", (out / "%s_100.webp").string()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out.empty());
    CHECK(names_in(out) == std::vector<std::string>{"a_100.webp", "b_100.webp"});  // no temp files left
    auto ha = header_of(out / "a_100.webp");
    CHECK(ha.fmt == img::format::webp);
    CHECK(ha.width == 100);
    CHECK(ha.height == 75);
    auto hb = header_of(out / "b_100.webp");
    CHECK(hb.fmt == img::format::webp);
    CHECK(hb.width == 50);
    CHECK(hb.height == 100);

    r = run_thumb({a.string(), "-s", "64", "-o", (out / "%s.PNG").string()});
    REQUIRE(r.status == 0);
    CHECK(header_of(out / "a.PNG").fmt == img::format::png);
}

TEST_CASE("cli: the default pattern writes tn_NAME.jpg beside the input", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_png(dir.path() / "pic.png", 512, 256);
    auto r = run_thumb({a.string()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto h = header_of(dir.path() / "tn_pic.jpg");
    CHECK(h.fmt == img::format::jpeg);
    CHECK(h.width == 256);
    CHECK(h.height == 128);
}

TEST_CASE("cli: sizes and fit modes", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_jpeg(dir.path() / "a.jpg", 400, 300);
    auto dims = [&](std::vector<std::string> extra) {
        const auto out = dir.path() / "o.png";
        std::vector<std::string> args = {a.string(), "-o", out.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = run_thumb(args);
        INFO(r.err);
        REQUIRE(r.status == 0);
        auto h = header_of(out);
        return std::pair{h.width, h.height};
    };
    CHECK(dims({"-s", "200"}) == std::pair{200, 150});
    CHECK(dims({"-s", "x60"}) == std::pair{80, 60});
    CHECK(dims({"-s", "100x"}) == std::pair{100, 75});
    CHECK(dims({"-s", "100x100", "--fit", "cover"}) == std::pair{100, 100});
    CHECK(dims({"-s", "100x20", "--fit", "fill"}) == std::pair{100, 20});
    CHECK(dims({"-s", "800"}) == std::pair{400, 300});  // never upscaled by default
    CHECK(dims({"-s", "800", "--enlarge"}) == std::pair{800, 600});
}

TEST_CASE("cli: JPEG options reach the encoder", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_png(dir.path() / "a.png", 300, 200);
    const auto plain = dir.path() / "plain.jpg", prog = dir.path() / "prog.jpg";
    REQUIRE(run_thumb({a.string(), "-o", plain.string(), "-q", "95"}).status == 0);
    REQUIRE(run_thumb({a.string(), "-o", prog.string(), "-q", "95", "--progressive", "--background", "#000000"})
                .status == 0);
    const std::string sof2("\xFF\xC2", 2);  // start of frame, progressive DCT
    CHECK(slurp(plain).find(sof2) == std::string::npos);
    CHECK(slurp(prog).find(sof2) != std::string::npos);
    // The alpha ramp is flattened onto white by default and onto black here.
    auto decoded_plain = img::decode(qt_test::read_file(plain), 100'000'000);
    auto decoded_prog = img::decode(qt_test::read_file(prog), 100'000'000);
    REQUIRE(decoded_plain);
    REQUIRE(decoded_prog);
    const auto& px = decoded_plain->data;
    const auto& bk = decoded_prog->data;
    const std::size_t right = (std::size_t(decoded_plain->height / 2) * decoded_plain->width + decoded_plain->width - 2) *
                              decoded_plain->channels;
    CHECK(px[right + 2] > bk[right + 2] + 40);  // blue: 128 over white vs over black
}

TEST_CASE("cli: a bad file is reported and the others are still done", "[cli]") {
    qt_test::temp_dir dir;
    const auto good1 = make_jpeg(dir.path() / "good1.jpg", 320, 240);
    const auto good2 = make_png(dir.path() / "good2.png", 320, 240);
    const auto junk = dir.path() / "junk.jpg";
    {
        std::ofstream(junk) << "this is not an image";
    }
    const auto missing = dir.path() / "missing.jpg";
    const auto out = dir.path() / "out";

    auto r = run_thumb({good1.string(), junk.string(), missing.string(), good2.string(), "-j", "2", "-o",
                        (out / "%s.jpg").string()});
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("quickthumb: " + junk.string() + ": "));
    CHECK_THAT(r.err, Catch::Contains("quickthumb: " + missing.string() + ": "));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);  // one line per bad file, nothing else
    CHECK(names_in(out) == std::vector<std::string>{"good1.jpg", "good2.jpg"});
}

TEST_CASE("cli: refuses to overwrite its input or to write one output twice", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_jpeg(dir.path() / "a.jpg", 320, 240);
    const auto before = slurp(a);
    auto r = run_thumb({a.string(), "-o", "%s.jpg"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("is the input itself"));
    CHECK(slurp(a) == before);

    fs::create_directories(dir.path() / "x");
    const auto b = make_jpeg(dir.path() / "x" / "a.jpg", 200, 100);
    const auto out = dir.path() / "out";
    r = run_thumb({a.string(), b.string(), "-o", (out / "%s.png").string()});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("quickthumb: " + b.string() + ": its output"));
    CHECK(header_of(out / "a.png").width == 256);  // the first input's
}

TEST_CASE("cli: bad usage exits 2 before touching any file", "[cli]") {
    qt_test::temp_dir dir;
    const auto a = make_jpeg(dir.path() / "a.jpg", 64, 64);
    const auto out = dir.path() / "out";
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {},
             {a.string(), "-o", (out / "%s.gif").string()},
             {a.string(), "-o", (out / "%s.jpg").string(), "--frobnicate"},
             {a.string(), "-o", (out / "%s.jpg").string(), "-s", "0x0"},
             {a.string(), "-o", (out / "%s.jpg").string(), "--fit", "squash"},
             {a.string(), a.string(), "-o", (out / "fixed.jpg").string()}}) {
        auto r = run_thumb(args);
        INFO(r.err);
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("quickthumb: "));
        CHECK(r.out.empty());
    }
    CHECK_FALSE(fs::exists(out));

    auto help = run_thumb({"--help"});
    CHECK(help.status == 0);
    CHECK_THAT(help.out, Catch::Contains("Usage: quickthumb thumb"));
}

TEST_CASE("cli: many files on several threads", "[cli]") {
    qt_test::temp_dir dir;
    std::vector<std::string> args;
    std::vector<std::string> expected;
    for (int i = 0; i < 24; ++i) {
        const std::string name = std::to_string(i);
        const fs::path in = dir.path() / (name + (i % 2 ? ".png" : ".jpg"));
        if (i % 2) make_png(in, 200 + i, 150);
        else make_jpeg(in, 200 + i, 150);
        args.push_back(in.string());
        expected.push_back(fs::path(name).concat("_t.webp").string());  // (not name + "...": a GCC 12 false warning)
    }
    std::sort(expected.begin(), expected.end());
    args.insert(args.end(), {"-s", "32", "-j", "4", "-o", (dir.path() / "out" / "%s_t.webp").string()});
    auto r = run_thumb(args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(names_in(dir.path() / "out") == expected);
    for (auto& n : expected) CHECK(header_of(dir.path() / "out" / n).width == 32);
}

namespace {

// A big JPEG written row by row, so the test itself never holds the image: gradients with a fine
// texture, about as compressible as a photo.
fs::path make_huge_jpeg(const fs::path& p, int w, int h) {
    std::FILE* f = std::fopen(p.c_str(), "wb");
    REQUIRE(f != nullptr);
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = static_cast<JDIMENSION>(w);
    cinfo.image_height = static_cast<JDIMENSION>(h);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 80, TRUE);
    cinfo.dct_method = JDCT_IFAST;
    jpeg_start_compress(&cinfo, TRUE);
    std::vector<std::uint8_t> row(std::size_t(w) * 3);
    while (cinfo.next_scanline < cinfo.image_height) {
        const int y = static_cast<int>(cinfo.next_scanline);
        for (int x = 0; x < w; ++x) {
            row[std::size_t(x) * 3] = static_cast<std::uint8_t>(x * 255 / (w - 1));
            row[std::size_t(x) * 3 + 1] = static_cast<std::uint8_t>(y * 255 / (h - 1));
            row[std::size_t(x) * 3 + 2] = static_cast<std::uint8_t>(((x / 7) ^ (y / 5)) & 0x3F);
        }
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    REQUIRE(std::fclose(f) == 0);
    return p;
}

}  // namespace

// The limit the issue sets: a 20000x14000 JPEG (280 Mpx; 840 MB as RGB) thumbnailed in under
// 100 MiB, which only works by decoding at 1/8 scale. Its time is measured in bench/thumb.sh.
TEST_CASE("cli: a 20000x14000 JPEG is thumbnailed through shrink-on-load in under 100 MiB", "[cli][limits]") {
    qt_test::temp_dir dir;
    const fs::path in = make_huge_jpeg(dir.path() / "huge.jpg", 20000, 14000);
    const fs::path out = dir.path() / "huge_256.jpg";

    // Over the default limit of 100 Mpx: refused from the header.
    auto refused = run_thumb({in.string(), "-s", "256", "-o", out.string()});
    CHECK(refused.status == 1);
    CHECK_THAT(refused.err, Catch::Contains("more than the limit"));
    CHECK_FALSE(fs::exists(out));

    auto r = run_thumb({in.string(), "-s", "256", "--max-pixels", "300000000", "-o", out.string()});
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto h = header_of(out);
    CHECK(h.width == 256);
    CHECK(h.height == 179);
#if defined(__SANITIZE_ADDRESS__)
    WARN("peak memory not checked under AddressSanitizer (its shadow memory inflates it); " << r.max_rss_kib / 1024
                                                                                            << " MiB seen");
#else
    INFO("input " << fs::file_size(in) / (1024 * 1024) << " MiB, peak RSS " << r.max_rss_kib / 1024 << " MiB");
    CHECK(r.max_rss_kib < 100 * 1024);
#endif
}
