// Black-box refusals: bad options and requests, unsupported or corrupt images, oversized uploads.
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

using namespace qt_test;
using namespace std::chrono_literals;

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

TEST_CASE("http: a corrupt image fails its job with a readable reason", "[http][e2e][pipeline]") {
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
