// An upload's body as the handler feeds it (src/http/upload_body.cpp), piece by piece, with no
// socket and no store: files and fields, sniffing, limits, and what a whole body must hold.
#include "http/upload_body.hpp"
#include "support/synthetic.hpp"

#include <catch2/catch.hpp>

using namespace quickthumb;
using namespace quickthumb::http;

namespace {

const std::string boundary = "XyZ";

std::string part(std::string_view name, std::optional<std::string_view> filename, std::string_view body) {
    std::string out = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"";
    if (filename) out += "; filename=\"" + std::string(*filename) + "\"";
    out += "\r\n\r\n" + std::string(body) + "\r\n";
    return out;
}
std::string closing() { return "--" + boundary + "--\r\n"; }

// Feeds `body` in pieces of `step` bytes; returns everything each file handed over, in order.
std::vector<std::string> feed_all(upload_body& b, const std::string& body, std::size_t step) {
    std::vector<std::string> got;
    for (std::size_t i = 0; i < body.size() && !b.refused(); i += step) {
        b.feed(std::string_view(body).substr(i, step));
        got.resize(b.files().size());
        for (std::size_t k = 0; k < b.files().size(); ++k) got[k] += b.files()[k]->take_pending();
    }
    return got;
}

}  // namespace

TEST_CASE("upload body: multipart files and fields, whatever the pieces", "[http][upload]") {
    const std::string jpeg = qt_test::synthetic_jpeg(40, 30);
    const std::string body = part("sizes", std::nullopt, "64,128") + part("file", "../a/b.jpg", jpeg) +
                             part("file[]", "two.jpg", jpeg) + part("format", std::nullopt, "webp") + closing();
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, body.size()}) {
        INFO("pieces of " << step);
        upload_body b(upload_body::as_multipart{boundary});
        auto got = feed_all(b, body, step);
        REQUIRE_FALSE(b.refused());
        CHECK_FALSE(b.finish());
        REQUIRE(b.files().size() == 2);
        CHECK(b.files()[0]->filename == "b.jpg");  // no directories
        CHECK(b.files()[1]->filename == "two.jpg");
        CHECK(got == std::vector<std::string>{jpeg, jpeg});
        CHECK(b.files()[0]->bytes() == static_cast<std::int64_t>(jpeg.size()));
        CHECK(b.fields().find("sizes")->second == "64,128");
        CHECK(b.fields().find("format")->second == "webp");
    }
}

TEST_CASE("upload body: a file that is not an image refuses the whole upload at once", "[http][upload]") {
    const std::string jpeg = qt_test::synthetic_jpeg(40, 30);
    const std::string text(4000, 'x');
    upload_body b(upload_body::as_multipart{boundary});
    feed_all(b, part("file", "ok.jpg", jpeg) + part("file", "notes.txt", text) + closing(), 512);
    REQUIRE(b.refused());
    CHECK(b.refused()->code == errc::not_an_image);
    CHECK_THAT(b.refused()->message, Catch::Contains("notes.txt") && Catch::Contains("no job was created"));
    // Before the file's end: as soon as enough of it has come to tell.
    upload_body early(upload_body::as_multipart{boundary});
    early.feed(part("file", "notes.txt", text).substr(0, 1500));
    CHECK(early.refused());
    // A short raw body is judged at its end.
    upload_body raw(upload_body::as_raw{"tiny.bin"});
    raw.feed("GIF");
    CHECK_FALSE(raw.refused());
    auto end = raw.finish();
    REQUIRE(end);
    CHECK(end->code == errc::not_an_image);
}

TEST_CASE("upload body: limits and what a whole body must hold", "[http][upload]") {
    const std::string jpeg = qt_test::synthetic_jpeg(8, 8);
    {
        std::string many;
        for (std::size_t i = 0; i <= upload_body::max_files; ++i) many += part("file", "f.jpg", jpeg);
        upload_body b(upload_body::as_multipart{boundary});
        feed_all(b, many + closing(), 4096);
        REQUIRE(b.refused());
        CHECK_THAT(b.refused()->message, Catch::Contains("too many files"));
    }
    {
        upload_body b(upload_body::as_multipart{boundary});
        feed_all(b, part("sizes", std::nullopt, std::string(upload_body::max_field_bytes + 1, '1')) + closing(), 100);
        REQUIRE(b.refused());
        CHECK_THAT(b.refused()->message, Catch::Contains("longer than"));
    }
    {
        upload_body b(upload_body::as_multipart{boundary});
        feed_all(b, part("file", "a.jpg", jpeg), 100);  // no closing boundary
        auto end = b.finish();
        REQUIRE(end);
        CHECK_THAT(end->message, Catch::Contains("closing boundary"));
    }
    {
        upload_body b(upload_body::as_multipart{boundary});
        b.feed("just text, no boundary at all");
        auto end = b.finish();
        REQUIRE(end);
        CHECK_THAT(end->message, Catch::Contains("never appears"));
    }
    {
        upload_body b(upload_body::as_multipart{boundary});
        feed_all(b, part("sizes", std::nullopt, "64") + closing(), 100);
        auto end = b.finish();
        REQUIRE(end);
        CHECK_THAT(end->message, Catch::Contains("no image"));
    }
    {
        upload_body b(upload_body::as_multipart{boundary});
        feed_all(b, part("file", "empty.jpg", "") + closing(), 100);
        auto end = b.finish();
        REQUIRE(end);
        CHECK_THAT(end->message, Catch::Contains("'empty.jpg' is empty"));
    }
    {
        // A raw body: one file, named from the query, its bytes handed over whole.
        upload_body b(upload_body::as_raw{"dir/photo.jpg"});
        auto got = feed_all(b, jpeg, 5);
        CHECK_FALSE(b.finish());
        REQUIRE(b.files().size() == 1);
        CHECK(b.files()[0]->filename == "photo.jpg");
        CHECK(got == std::vector<std::string>{jpeg});
    }
    CHECK(clean_filename("a\x01b\x7f/c\\d") == "d");
    CHECK(clean_filename("") == "upload");
    CHECK(clean_filename(std::string(300, 'n')).size() == 255);
}
