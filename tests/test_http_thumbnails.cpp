// Black-box uploads that succeed: the thumbnails' sizes, fits and formats, and the job list.
#include "quickthumb/image.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

using namespace qt_test;
using namespace std::chrono_literals;

namespace {

// A PNG with an alpha channel: opaque on the left half, fully transparent on the right.
std::string synthetic_png(int w, int h) {
    quickthumb::image::pixels p{w, h, 4, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 4)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            auto* px = &p.data[(static_cast<std::size_t>(y) * w + x) * 4];
            px[0] = static_cast<std::uint8_t>(x * 255 / w);
            px[1] = 40;
            px[2] = static_cast<std::uint8_t>(y * 255 / h);
            px[3] = x < w / 2 ? 255 : 0;
        }
    auto enc = quickthumb::image::encode_png(p);
    REQUIRE(enc);
    return {enc->begin(), enc->end()};
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

quickthumb::image::header_info header_of(const std::string& bytes) {
    auto h = quickthumb::image::read_header(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE(h);
    return *h;
}

}  // namespace

TEST_CASE("http: upload a JPEG / watch it finish / fetch its thumbnail", "[http][e2e][pipeline]") {
    temp_dir dir;
    server_process server(dir.path());
    auto r = upload(server.port(), {{"file", "photo.jpg", "image/jpeg", synthetic_jpeg(800, 600)}});
    REQUIRE(r.status == 202);
    auto job = parse_object(r.body);
    const std::string id = str(job.at("id"));
    CHECK(r.headers.at("location") == "/api/v1/jobs/" + id);
    CHECK(r.headers.at("content-type") == "application/json");
    CHECK(str(job.at("state")) == "queued");
    CHECK(str(job.at("source").at("filename")) == "photo.jpg");

    auto done = parse_object(wait_for_final(server.port(), id, 60s));
    REQUIRE(str(done.at("state")) == "succeeded");
    CHECK(done.at("progress").as_int64() == 100);
    CHECK(str(done.at("source").at("format")) == "jpeg");
    CHECK(done.at("source").at("width").as_int64() == 800);
    const auto& out = done.at("outputs").as_array().at(0).as_object();
    CHECK(out.at("width").as_int64() == 256);
    CHECK(out.at("height").as_int64() == 192);

    auto thumb = http_request(server.port(), "GET", str(out.at("url")));
    REQUIRE(thumb.status == 200);
    CHECK(thumb.headers.at("content-type") == "image/jpeg");
    CHECK(static_cast<std::int64_t>(thumb.body.size()) == out.at("bytes").as_int64());
    auto h = header_of(thumb.body);
    CHECK(h.fmt == quickthumb::image::format::jpeg);
    CHECK(h.width == 256);
    CHECK(h.height == 192);

    // Thumbnails never change: the ETag revalidates without a body.
    auto etag = thumb.headers.at("etag");
    CHECK_THAT(thumb.headers.at("cache-control"), Catch::Contains("immutable"));
    auto again = http_request(server.port(), "GET", str(out.at("url")), "", {{"If-None-Match", etag}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
}

TEST_CASE("http: a real photo from the shared test data", "[http][e2e][pipeline]") {
    QT_REQUIRE_SHARED_TESTDATA(data);
    temp_dir dir;
    server_process server(dir.path());
    auto bytes = read_file(data / "images" / "exif" / "Landscape_1.jpg");
    auto r = upload(server.port(), {{"file", "Landscape_1.jpg", "image/jpeg", std::string(bytes.begin(), bytes.end())}});
    REQUIRE(r.status == 202);
    auto done = parse_object(wait_for_final(server.port(), str(parse_object(r.body).at("id")), 60s));
    REQUIRE(str(done.at("state")) == "succeeded");
    const auto& out = done.at("outputs").as_array().at(0).as_object();
    CHECK(std::max(out.at("width").as_int64(), out.at("height").as_int64()) == 256);
    auto thumb = http_request(server.port(), "GET", str(out.at("url")));
    REQUIRE(thumb.status == 200);
    CHECK(header_of(thumb.body).fmt == quickthumb::image::format::jpeg);
}

TEST_CASE("http: options from form fields and the query string", "[http][e2e][pipeline]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto img = synthetic_jpeg(640, 480);

    auto cover = upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}},
                        {{"width", "100"}, {"height", "100"}, {"fit", "cover"}, {"format", "png"}});
    REQUIRE(cover.status == 202);
    auto byquery = upload(server.port(), {{"file", "b.jpg", "image/jpeg", img}}, {}, "?width=64&quality=50");
    REQUIRE(byquery.status == 202);

    auto c = parse_object(wait_for_final(server.port(), str(parse_object(cover.body).at("id")), 60s));
    REQUIRE(str(c.at("state")) == "succeeded");
    const auto& co = c.at("outputs").as_array().at(0).as_object();
    CHECK(co.at("width").as_int64() == 100);
    CHECK(co.at("height").as_int64() == 100);
    auto png = http_request(server.port(), "GET", str(co.at("url")));
    CHECK(png.headers.at("content-type") == "image/png");
    CHECK(header_of(png.body).fmt == quickthumb::image::format::png);
    CHECK(header_of(png.body).width == 100);

    auto q = parse_object(wait_for_final(server.port(), str(parse_object(byquery.body).at("id")), 60s));
    REQUIRE(str(q.at("state")) == "succeeded");
    CHECK(q.at("outputs").as_array().at(0).at("width").as_int64() == 64);
    CHECK(q.at("outputs").as_array().at(0).at("height").as_int64() == 48);
    CHECK(q.at("params").at("quality").as_int64() == 50);
}

TEST_CASE("http: several sizes from one upload", "[http][e2e][pipeline]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto img = synthetic_jpeg(640, 480);
    auto r = upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"sizes", "64,128"}});
    REQUIRE(r.status == 202);
    auto accepted = parse_object(r.body);
    CHECK(accepted.at("params").at("sizes").as_array().size() == 2);
    auto done = parse_object(wait_for_final(server.port(), str(accepted.at("id")), 60s));
    REQUIRE(str(done.at("state")) == "succeeded");
    const auto& outs = done.at("outputs").as_array();
    REQUIRE(outs.size() == 2);
    const std::pair<int, int> want[] = {{64, 48}, {128, 96}};
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& o = outs[i].as_object();
        CHECK(o.at("width").as_int64() == want[i].first);
        CHECK(o.at("height").as_int64() == want[i].second);
        CHECK(str(o.at("name")) ==
              "thumb_" + std::to_string(want[i].first) + "x" + std::to_string(want[i].second) + ".jpg");
        auto t = http_request(server.port(), "GET", str(o.at("url")));
        REQUIRE(t.status == 200);
        CHECK(t.headers.at("content-type") == "image/jpeg");
        CHECK(static_cast<std::int64_t>(t.body.size()) == o.at("bytes").as_int64());
        auto h = header_of(t.body);
        CHECK(h.fmt == quickthumb::image::format::jpeg);
        CHECK(h.width == want[i].first);
        CHECK(h.height == want[i].second);
    }

    // Sizes that come out the same (a small source is not enlarged) give one output;
    // with enlarge they are upscaled, each to its own size.
    const auto small = synthetic_jpeg(320, 240);
    auto same = upload(server.port(), {{"file", "s.jpg", "image/jpeg", small}}, {{"sizes", "400,500"}});
    auto big = upload(server.port(), {{"file", "s.jpg", "image/jpeg", small}}, {{"sizes", "400,500"}, {"enlarge", "true"}});
    REQUIRE(same.status == 202);
    REQUIRE(big.status == 202);
    auto s = parse_object(wait_for_final(server.port(), str(parse_object(same.body).at("id")), 60s));
    REQUIRE(str(s.at("state")) == "succeeded");
    REQUIRE(s.at("outputs").as_array().size() == 1);
    CHECK(str(s.at("outputs").as_array()[0].at("name")) == "thumb_320x240.jpg");
    auto b = parse_object(wait_for_final(server.port(), str(parse_object(big.body).at("id")), 60s));
    REQUIRE(str(b.at("state")) == "succeeded");
    REQUIRE(b.at("outputs").as_array().size() == 2);
    CHECK(str(b.at("outputs").as_array()[0].at("name")) == "thumb_400x300.jpg");
    CHECK(str(b.at("outputs").as_array()[1].at("name")) == "thumb_500x375.jpg");
}

TEST_CASE("http: WebP output / fill / one-sided cover / JPEG background", "[http][e2e][pipeline]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto img = synthetic_jpeg(640, 480);
    auto webp = upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"format", "webp"}, {"sizes", "200,100x100"}});
    auto fill = upload(server.port(), {{"file", "b.jpg", "image/jpeg", img}}, {}, "?sizes=100x50,30x90&fit=fill");
    auto cover = upload(server.port(), {{"file", "c.jpg", "image/jpeg", img}}, {{"width", "100"}, {"fit", "cover"}});
    auto flat = upload(server.port(), {{"file", "d.png", "image/png", synthetic_png(64, 64)}},
                       {{"background", "#ff0000"}, {"sizes", "64"}, {"quality", "95"}});
    for (const auto* r : {&webp, &fill, &cover, &flat}) REQUIRE(r->status == 202);
    auto finished = [&](const http_reply& r) {
        auto j = parse_object(wait_for_final(server.port(), str(parse_object(r.body).at("id")), 60s));
        REQUIRE(str(j.at("state")) == "succeeded");
        return j.at("outputs").as_array();
    };

    auto w = finished(webp);
    REQUIRE(w.size() == 2);
    const std::pair<int, int> want[] = {{200, 150}, {100, 75}};
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK_THAT(str(w[i].at("name")), Catch::EndsWith(".webp"));
        auto t = http_request(server.port(), "GET", str(w[i].at("url")));
        REQUIRE(t.status == 200);
        CHECK(t.headers.at("content-type") == "image/webp");
        REQUIRE(t.body.size() > 12);
        CHECK(t.body.substr(0, 4) == "RIFF");
        CHECK(t.body.substr(8, 4) == "WEBP");
        auto h = header_of(t.body);
        CHECK(h.fmt == quickthumb::image::format::webp);
        CHECK(h.width == want[i].first);
        CHECK(h.height == want[i].second);
    }

    auto f = finished(fill);
    REQUIRE(f.size() == 2);
    CHECK(str(f[0].at("name")) == "thumb_100x50.jpg");
    CHECK(str(f[1].at("name")) == "thumb_30x90.jpg");

    // fit=cover with one side scales to that side.
    auto c = finished(cover);
    REQUIRE(c.size() == 1);
    CHECK(str(c[0].at("name")) == "thumb_100x75.jpg");

    // Transparent pixels are flattened onto the background colour in a JPEG.
    auto fl = finished(flat);
    REQUIRE(fl.size() == 1);
    auto t = http_request(server.port(), "GET", str(fl[0].at("url")));
    REQUIRE(t.status == 200);
    auto px = quickthumb::image::decode(bytes_of(t.body), 100'000'000);
    REQUIRE(px);
    REQUIRE(px->width == 64);
    const auto* right = &px->data[(static_cast<std::size_t>(32) * 64 + 56) * px->channels];
    CHECK(right[0] > 230);
    CHECK(right[1] < 30);
    CHECK(right[2] < 30);
}

TEST_CASE("http: raw image body / several files / and the job list", "[http][e2e][pipeline]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto img = synthetic_jpeg(320, 240);
    auto raw = http_request(server.port(), "POST", "/api/v1/jobs?filename=raw.jpg", img, {{"Content-Type", "image/jpeg"}});
    REQUIRE(raw.status == 202);
    CHECK(str(parse_object(raw.body).at("source").at("filename")) == "raw.jpg");

    auto many = upload(server.port(), {{"file", "1.jpg", "image/jpeg", img}, {"file", "2.jpg", "image/jpeg", img},
                                       {"file", "../../3.jpg", "image/jpeg", img}});
    REQUIRE(many.status == 202);
    auto jobs = parse_object(many.body).at("jobs").as_array();
    REQUIRE(jobs.size() == 3);
    CHECK(str(jobs[2].at("source").at("filename")) == "3.jpg");  // no directories kept
    for (const auto& j : jobs) {
        auto done = parse_object(wait_for_final(server.port(), str(j.at("id")), 60s));
        CHECK(str(done.at("state")) == "succeeded");
    }
    REQUIRE(str(parse_object(wait_for_final(server.port(), str(parse_object(raw.body).at("id")), 60s)).at("state")) ==
            "succeeded");

    // Newest first, two per page.
    auto p1 = parse_object(http_request(server.port(), "GET", "/api/v1/jobs?limit=2").body);
    auto l1 = p1.at("jobs").as_array();
    REQUIRE(l1.size() == 2);
    CHECK(str(l1[0].at("id")) == str(jobs[2].at("id")));
    CHECK(str(l1[1].at("id")) == str(jobs[1].at("id")));
    REQUIRE(p1.at("next_cursor").is_string());
    auto p2 = parse_object(
        http_request(server.port(), "GET", "/api/v1/jobs?limit=2&cursor=" + str(p1.at("next_cursor"))).body);
    auto l2 = p2.at("jobs").as_array();
    REQUIRE(l2.size() == 2);
    CHECK(str(l2[0].at("id")) == str(jobs[0].at("id")));
    CHECK(str(l2[1].at("id")) == str(parse_object(raw.body).at("id")));
    CHECK(p2.at("next_cursor").is_null());
    auto ok = parse_object(http_request(server.port(), "GET", "/api/v1/jobs?state=succeeded&limit=100").body);
    CHECK(ok.at("jobs").as_array().size() == 4);
}
