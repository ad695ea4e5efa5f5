// Black-box tests: the real binary on a free port with a temporary data directory.
#include "quickthumb/image.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include <csignal>
#include <filesystem>

using namespace qt_test;
namespace json = boost::json;
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

TEST_CASE("http: upload a JPEG / watch it finish / fetch its thumbnail", "[http][e2e]") {
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

TEST_CASE("http: a real photo from the shared test data", "[http][e2e]") {
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

TEST_CASE("http: options from form fields and the query string", "[http][e2e]") {
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

TEST_CASE("http: bad options and bad requests get clear errors", "[http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--max-upload", "64K"});
    const auto img = synthetic_jpeg(64, 64);
    auto expect_error = [](const http_reply& r, int status, const std::string& code, const std::string& words) {
        CHECK(r.status == status);
        auto body = parse_object(r.body);
        CHECK(str(body.at("error").at("code")) == code);
        CHECK_THAT(str(body.at("error").at("message")), Catch::Contains(words));
    };
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"width", "-3"}}), 400,
                 "invalid_option", "width");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"fit", "squash"}}), 400,
                 "invalid_option", "fit");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {}, "?format=tiff"), 400,
                 "invalid_option", "format");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"quality", "0"}}), 400,
                 "invalid_option", "quality");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"sizes", "64,0"}}), 400,
                 "invalid_option", "sizes must be");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {}, "?sizes=1,2,3,4,5,6,7,8,9"), 400,
                 "invalid_option", "more than 8");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"sizes", "64"}, {"width", "64"}}),
                 400, "invalid_option", "either sizes or width/height");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"enlarge", "maybe"}}), 400,
                 "invalid_option", "enlarge must be true, false, 1 or 0");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {{"background", "blue"}}), 400,
                 "invalid_option", "background must be");
    expect_error(upload(server.port(), {{"file", "a.jpg", "image/jpeg", img}}, {}, "?fit=stretch"), 400,
                 "invalid_option", "contain, cover or fill");
    expect_error(upload(server.port(), {}, {{"width", "10"}}), 400, "bad_request", "file");
    expect_error(upload(server.port(), {{"file", "big.jpg", "image/jpeg", std::string(100 * 1024, 'x')}}), 413,
                 "payload_too_large", "limit");
    expect_error(http_request(server.port(), "POST", "/api/v1/jobs", "hello", {{"Content-Type", "text/plain"}}), 415,
                 "unsupported_media_type", "multipart/form-data");
    expect_error(http_request(server.port(), "POST", "/api/v1/jobs", "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
                              {{"Content-Type", "multipart/form-data; boundary=x"}}),
                 400, "bad_request", "closing boundary");
    expect_error(http_request(server.port(), "GET", "/api/v1/jobs/nope"), 404, "not_found", "nope");
    expect_error(http_request(server.port(), "GET", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found", "no job");
    expect_error(http_request(server.port(), "GET", "/api/v1/jobs?limit=0"), 400, "invalid_option", "limit");
    expect_error(http_request(server.port(), "GET", "/api/v1/jobs?state=done"), 400, "invalid_option", "state");
    expect_error(http_request(server.port(), "GET", "/thumbs/..%2f..%2fquickthumb.db/x"), 404, "not_found", "thumbnail");
    expect_error(http_request(server.port(), "GET", "/thumbs/AAAAAAAAAAAAAAAAAAAAAA/..%2f..%2fquickthumb.db"), 404,
                 "not_found", "thumbnail");
    expect_error(http_request(server.port(), "GET", "/no/such/page"), 404, "not_found", "no route");
    CHECK(http_request(server.port(), "DELETE", "/healthz").status == 405);
    // The server is still fine after all of that.
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("http: a corrupt image fails its job with a readable reason", "[http][e2e]") {
    temp_dir dir;
    server_process server(dir.path());
    // A truncated JPEG passes the upload's sniffing (its signature is right) and fails in the worker.
    auto img = synthetic_jpeg(300, 200);
    auto t = upload(server.port(), {{"file", "cut.jpg", "image/jpeg", img.substr(0, img.size() / 2)}});
    REQUIRE(t.status == 202);
    auto cut = parse_object(wait_for_final(server.port(), str(parse_object(t.body).at("id")), 60s));
    CHECK(str(cut.at("state")) == "failed");
    CHECK(str(cut.at("error").at("code")) == "corrupt_image");
    CHECK(cut.at("outputs").as_array().empty());
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("http: uploads that are not a supported image get 415 and store nothing", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    auto expect_415 = [](const http_reply& r, const std::string& code, const std::string& words) {
        CHECK(r.status == 415);
        auto body = parse_object(r.body);
        CHECK(str(body.at("error").at("code")) == code);
        CHECK_THAT(str(body.at("error").at("message")), Catch::Contains(words) &&
                                                             Catch::Contains("supported: JPEG, PNG, WebP, GIF, BMP"));
    };
    const std::string tiff = std::string("II*\0\x08\0\0\0", 8) + std::string(2000, '\0');
    expect_415(upload(server.port(), {{"file", "scan.tif", "image/tiff", tiff}}), "unsupported_format",
               "TIFF images are not supported");
    expect_415(upload(server.port(), {{"file", "notes.txt", "image/jpeg", "these are my notes, not a picture\n"}}),
               "not_an_image", "'notes.txt': the file is not an image");
    // Raw bodies are sniffed too, whatever their Content-Type says; short ones at their end.
    expect_415(http_request(server.port(), "POST", "/api/v1/jobs?filename=s.tif", tiff, {{"Content-Type", "image/jpeg"}}),
               "unsupported_format", "TIFF");
    expect_415(http_request(server.port(), "POST", "/api/v1/jobs", "hi", {{"Content-Type", "image/png"}}),
               "not_an_image", "not an image");
    expect_415(upload(server.port(), {{"file", "icon.svg", "image/svg+xml",
                                       "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"}}),
               "unsupported_format", "SVG images are not supported");
    // One bad file among good ones refuses the whole request: no job for the good ones either.
    const auto img = synthetic_jpeg(64, 48);
    auto mixed = upload(server.port(), {{"file", "ok.jpg", "image/jpeg", img}, {"file", "scan.tif", "image/tiff", tiff},
                                        {"file", "ok2.jpg", "image/jpeg", img}});
    expect_415(mixed, "unsupported_format", "'scan.tif': TIFF");
    CHECK_THAT(str(parse_object(mixed.body).at("error").at("message")), Catch::Contains("no job was created"));

    auto list = parse_object(http_request(server.port(), "GET", "/api/v1/jobs?limit=100").body);
    CHECK(list.at("jobs").as_array().empty());
    for (const char* sub : {"uploads", "tmp"}) {
        INFO(sub);
        CHECK(std::filesystem::is_empty(dir.path() / sub));
    }
    // And a good upload still works afterwards.
    CHECK(upload(server.port(), {{"file", "ok.jpg", "image/jpeg", img}}).status == 202);
}

TEST_CASE("http: several sizes from one upload", "[http][e2e]") {
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

TEST_CASE("http: WebP output / fill / one-sided cover / JPEG background", "[http][e2e]") {
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

TEST_CASE("http: raw image body / several files / and the job list", "[http][e2e]") {
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

TEST_CASE("http: the page and health", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    auto health = http_request(server.port(), "GET", "/healthz");
    CHECK(health.status == 200);
    auto page = http_request(server.port(), "GET", "/");
    REQUIRE(page.status == 200);
    CHECK_THAT(page.headers.at("content-type"), Catch::Contains("text/html"));
    CHECK_THAT(page.body, Catch::Contains("<script src=\"app.js\"") || Catch::Contains("<script src=\"/app.js\""));
    // The options of the API are on the page.
    CHECK_THAT(page.body, Catch::Contains("name=\"sizes\"") && Catch::Contains("value=\"fill\"") &&
                              Catch::Contains("value=\"webp\"") && Catch::Contains("name=\"enlarge\""));
    auto js = http_request(server.port(), "GET", "/app.js");
    CHECK(js.status == 200);
    CHECK_THAT(js.headers.at("content-type"), Catch::Contains("javascript"));
    CHECK_THAT(js.body, Catch::Contains("api/v1/jobs"));
}

TEST_CASE("http: jobs accepted before a SIGKILL all finish after a restart", "[http][e2e][recovery]") {
    temp_dir dir;
    const auto img = synthetic_jpeg(400, 300);
    std::vector<std::string> ids;
    {
        // No workers: every job stays queued, as if the machine died right after the 202s.
        server_process server(dir.path(), {"--workers", "0"});
        for (int i = 0; i < 20; ++i) {
            auto r = upload(server.port(), {{"file", "p" + std::to_string(i) + ".jpg", "image/jpeg", img}});
            REQUIRE(r.status == 202);
            ids.push_back(str(parse_object(r.body).at("id")));
        }
        CHECK(server.stop(SIGKILL) == 128 + SIGKILL);
    }
    server_process server(dir.path(), {"--workers", "2"});
    for (const auto& id : ids) {
        auto done = parse_object(wait_for_final(server.port(), id, 60s));
        CHECK(str(done.at("state")) == "succeeded");
    }
    auto all = parse_object(http_request(server.port(), "GET", "/api/v1/jobs?state=succeeded&limit=100").body);
    CHECK(all.at("jobs").as_array().size() == ids.size());
}

TEST_CASE("http: SIGTERM stops the service cleanly", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
    CHECK(server.stop(SIGTERM) == 0);
    CHECK_THAT(server.output(), Catch::Contains("shutting down"));
}

TEST_CASE("http: uploads above the limit get 413 and small requests stay small", "[http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--max-upload", "1M"});
    // Larger than the limit, than Beast's default 1 MB body limit, and than the socket buffers: the
    // client is still sending when the 413 is written, and must still read it (not a reset).
    auto big = upload(server.port(), {{"file", "big.bin", "application/octet-stream", std::string(16 << 20, 'x')}});
    CHECK(big.status == 413);
    CHECK_THAT(big.body, Catch::Contains("payload_too_large"));
    // A non-upload route with a declared large body is refused without reading it.
    auto r = http_request(server.port(), "GET", "/healthz", std::string(200 * 1024, 'y'));
    CHECK(r.status == 413);
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("http: an Idempotency-Key makes a repeated upload return the first job", "[http][idempotency]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0"});
    const auto p = server.port();
    const auto img = synthetic_jpeg(64, 48);
    auto [ct, body] = multipart_body({{"file", "a.jpg", "image/jpeg", img}});
    auto send = [&](const std::string& key) {
        return http_request(p, "POST", "/api/v1/jobs", body, {{"Content-Type", ct}, {"Idempotency-Key", key}});
    };
    auto first = send("order-42-avatar");
    REQUIRE(first.status == 202);
    CHECK(first.headers.count("idempotent-replayed") == 0);
    const auto id = str(parse_object(first.body).at("id"));
    auto again = send("order-42-avatar");
    REQUIRE(again.status == 202);
    CHECK(again.headers.at("idempotent-replayed") == "true");
    CHECK(str(parse_object(again.body).at("id")) == id);
    CHECK(again.headers.at("location") == "/api/v1/jobs/" + id);
    auto other = send("order-43-avatar");
    REQUIRE(other.status == 202);
    CHECK(str(parse_object(other.body).at("id")) != id);
    // Exactly two jobs exist, and the replay stored no second upload.
    auto list = parse_object(http_request(p, "GET", "/api/v1/jobs?limit=10").body);
    CHECK(list.at("jobs").as_array().size() == 2);
    std::size_t uploads = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path() / "uploads")) ++uploads;
    CHECK(uploads == 2);
    // Keys are bounded and visible ASCII.
    CHECK(send("has space").status == 400);
    CHECK(send(std::string(300, 'k')).status == 400);
}

TEST_CASE("http: every answer carries a strict CSP and nosniff", "[http]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "1"});
    const auto p = server.port();
    auto r = upload(p, {{"file", "a.jpg", "image/jpeg", synthetic_jpeg(64, 48)}});
    REQUIRE(r.status == 202);
    const auto id = str(parse_object(r.body).at("id"));
    const auto done = parse_object(wait_for_final(p, id, 60s));
    const auto thumb = str(done.at("outputs").as_array().at(0).at("url"));
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/"}, {"GET", "/app.js"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/api/v1/jobs"},
             {"GET", "/api/v1/jobs/" + id}, {"GET", thumb}, {"GET", "/nope"}, {"PUT", "/healthz"},
             {"DELETE", "/api/v1/jobs/" + id}}) {
        auto res = http_request(p, method, target);
        INFO(method << " " << target << " -> " << res.status);
        CHECK_THAT(res.headers["content-security-policy"], Catch::Contains("default-src 'self'"));
        CHECK(res.headers["x-content-type-options"] == "nosniff");
    }
    CHECK(r.headers["x-content-type-options"] == "nosniff");  // the 202 too
}

TEST_CASE("http: one log line per request unless --log-level says otherwise", "[http][logs]") {
    {
        temp_dir dir;
        server_process server(dir.path());
        CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
        CHECK(http_request(server.port(), "GET", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA").status == 404);
        CHECK(server.stop(SIGTERM) == 0);
        const auto out = server.output();
        CHECK_THAT(out, Catch::Contains("msg=\"request\" method=GET path=\"/healthz\" status=200 ms="));
        CHECK_THAT(out, Catch::Contains("path=\"/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA\" status=404"));
    }
    temp_dir dir;
    server_process quiet(dir.path(), {"--log-level", "warn"});
    CHECK(http_request(quiet.port(), "GET", "/healthz").status == 200);
    CHECK(quiet.stop(SIGTERM) == 0);
    CHECK_THAT(quiet.output(), !Catch::Contains("msg=\"request\""));
    CHECK_THAT(quiet.output(), !Catch::Contains("level=info"));
}

TEST_CASE("http: HEAD answers carry no body so keep-alive stays in step", "[http]") {
    temp_dir dir;
    server_process server(dir.path());
    // Two requests on one connection: the HEAD answer must end at its header, or the GET's
    // status line would not come right after it.
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket sock(io);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    const std::string reqs =
        "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    boost::asio::write(sock, boost::asio::buffer(reqs));
    std::string got;
    boost::system::error_code ec;
    for (;;) {
        char buf[4096];
        const auto n = sock.read_some(boost::asio::buffer(buf), ec);
        got.append(buf, n);
        if (ec) break;
    }
    const auto first_end = got.find("\r\n\r\n");
    REQUIRE(first_end != std::string::npos);
    CHECK_THAT(got.substr(0, first_end), Catch::Contains("Content-Length: 16"));
    CHECK(got.compare(first_end + 4, 15, "HTTP/1.1 200 OK") == 0);
    REQUIRE(got.size() > first_end + 20);
    CHECK(got.substr(got.size() - 16) == "{\"status\":\"ok\"}\n");
}
