#include "quickthumb/multipart.hpp"

#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include <random>

using namespace quickthumb;
using multipart::parser;

namespace {

struct part {
    std::string name;
    std::optional<std::string> filename;
    std::string content_type;
    std::string data;
    bool ended = false;
    bool operator==(const part&) const = default;
};

struct outcome {
    std::vector<part> parts;
    bool done = false;
    bool failed = false;
    std::string message;
};

// Feeds `body` in pieces cut at `cuts` (ascending offsets).
outcome parse(const std::string& boundary, const std::string& body, const std::vector<std::size_t>& cuts,
              std::size_t max_header = 16 * 1024) {
    outcome out;
    parser p(boundary,
             {[&](const multipart::part_header& h) { out.parts.push_back({h.name, h.filename, h.content_type, {}, false}); },
              [&](std::string_view d) { out.parts.back().data.append(d); },
              [&] { out.parts.back().ended = true; }},
             max_header);
    std::size_t prev = 0;
    auto cut_points = cuts;
    cut_points.push_back(body.size());
    for (auto c : cut_points) {
        if (p.feed(std::string_view(body).substr(prev, c - prev))) {
            out.failed = true;
            out.message = p.error_message();
            return out;
        }
        prev = c;
    }
    out.done = p.done();
    return out;
}

const std::string boundary = "----qtBoundaryX9";

std::string sample_body() {
    std::string binary;
    for (int i = 0; i < 3000; ++i) binary += static_cast<char>((i * 37) % 256);
    binary += "\r\n------qtBoundaryX";  // almost the delimiter, in the data
    binary += "\r\n--";
    binary += std::string("\0\r\n\r\n", 5);
    return "preamble to ignore\r\n"
           "--" + boundary + "\r\n"
           "Content-Disposition: form-data; name=\"width\"\r\n\r\n"
           "128\r\n"
           "--" + boundary + "\r\n"
           "content-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".jpg\"\r\n"
           "Content-Type: image/jpeg\r\n\r\n" + binary + "\r\n"
           "--" + boundary + "  \r\n"
           "Content-Disposition: form-data; name=\"file\"; filename=\"empty.png\"\r\n\r\n"
           "\r\n"
           "--" + boundary + "\r\n"
           "Content-Disposition: form-data; name=fit\r\n\r\n"
           "cover\r\n"
           "--" + boundary + "--\r\n"
           "epilogue to ignore --" + boundary + "\r\n";
}

void check_sample(const outcome& o) {
    REQUIRE_FALSE(o.failed);
    CHECK(o.done);
    REQUIRE(o.parts.size() == 4);
    CHECK(o.parts[0].name == "width");
    CHECK(o.parts[0].data == "128");
    CHECK_FALSE(o.parts[0].filename);
    CHECK(o.parts[1].name == "file");
    CHECK(o.parts[1].filename == std::string("a \"b\".jpg"));
    CHECK(o.parts[1].content_type == "image/jpeg");
    CHECK(o.parts[1].data.size() == 3000 + 19 + 4 + 5);
    CHECK(o.parts[2].filename == std::string("empty.png"));
    CHECK(o.parts[2].data.empty());
    CHECK(o.parts[3].name == "fit");
    CHECK(o.parts[3].data == "cover");
    for (const auto& p : o.parts) CHECK(p.ended);
}

}  // namespace

TEST_CASE("multipart: boundary from Content-Type", "[multipart]") {
    CHECK(multipart::boundary_from_content_type("multipart/form-data; boundary=abc") == std::string("abc"));
    CHECK(multipart::boundary_from_content_type("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b;c\"") ==
          std::string("a b;c"));
    CHECK_FALSE(multipart::boundary_from_content_type("multipart/form-data"));
    CHECK_FALSE(multipart::boundary_from_content_type("multipart/form-data; boundary="));
    CHECK_FALSE(multipart::boundary_from_content_type("multipart/mixed; boundary=abc"));
    CHECK_FALSE(multipart::boundary_from_content_type("image/jpeg"));
    CHECK_FALSE(multipart::boundary_from_content_type("multipart/form-data; boundary=" + std::string(71, 'x')));
}

TEST_CASE("multipart: whole body in one chunk", "[multipart]") { check_sample(parse(boundary, sample_body(), {})); }

TEST_CASE("multipart: split at every single position gives the same parts", "[multipart]") {
    const auto body = sample_body();
    const auto whole = parse(boundary, body, {});
    for (std::size_t cut = 1; cut < body.size(); ++cut) {
        auto o = parse(boundary, body, {cut});
        if (o.parts != whole.parts || !o.done) FAIL("differs when split at " << cut);
    }
    SUCCEED();
}

TEST_CASE("multipart: one byte at a time / and random chunk sizes", "[multipart]") {
    const auto body = sample_body();
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < body.size(); ++i) every.push_back(i);
    check_sample(parse(boundary, body, every));

    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::size_t> cuts;
        std::size_t at = 0;
        for (;;) {
            at += 1 + rng() % 97;
            if (at >= body.size()) break;
            cuts.push_back(at);
        }
        check_sample(parse(boundary, body, cuts));
    }
}

TEST_CASE("multipart: a truncated body is not done", "[multipart]") {
    const auto body = sample_body();
    auto cut = body.find("--" + boundary + "--");
    auto o = parse(boundary, body.substr(0, cut), {});
    CHECK_FALSE(o.failed);
    CHECK_FALSE(o.done);
}

TEST_CASE("multipart: malformed bodies are refused with a reason", "[multipart]") {
    auto body_with = [](std::string headers) {
        return "--" + boundary + "\r\n" + headers + "\r\n\r\ndata\r\n--" + boundary + "--\r\n";
    };
    auto o1 = parse(boundary, body_with("Content-Type: text/plain"), {});
    CHECK(o1.failed);
    CHECK_THAT(o1.message, Catch::Contains("Content-Disposition"));

    auto o2 = parse(boundary, body_with("Content-Disposition: form-data; filename=\"x\""), {});
    CHECK(o2.failed);

    auto o3 = parse(boundary, body_with("Content-Disposition: form-data; name=\"a\"\r\nX-Big: " + std::string(5000, 'y')),
                    {}, 1024);
    CHECK(o3.failed);
    CHECK_THAT(o3.message, Catch::Contains("too large"));

    auto o4 = parse(boundary, "--" + boundary + "garbage\r\n", {});
    CHECK(o4.failed);
    CHECK_THAT(o4.message, Catch::Contains("after a boundary"));

    // Header block that never ends is bounded too, even fed in small pieces.
    std::string endless = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"a\"\r\n" + std::string(4000, 'z');
    std::vector<std::size_t> cuts;
    for (std::size_t i = 100; i < endless.size(); i += 100) cuts.push_back(i);
    auto o5 = parse(boundary, endless, cuts, 1024);
    CHECK(o5.failed);
}

TEST_CASE("multipart: a large part streams through with bounded buffering", "[multipart]") {
    std::string big(5 << 20, 'q');
    std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\n" + big +
                       "\r\n--" + boundary + "--";
    std::size_t largest_piece = 0, total = 0;
    parser p(boundary, {[](const multipart::part_header&) {},
                        [&](std::string_view d) {
                            largest_piece = std::max(largest_piece, d.size());
                            total += d.size();
                        },
                        [] {}});
    for (std::size_t at = 0; at < body.size(); at += 65536) REQUIRE_FALSE(p.feed(std::string_view(body).substr(at, 65536)));
    CHECK(p.done());
    CHECK(total == big.size());
    CHECK(largest_piece <= 65536 + boundary.size() + 4);
}

TEST_CASE("multipart: a part's data is handed over where it lies in the chunk, not copied", "[multipart]") {
    // Only what straddles two chunks (a possible delimiter) may come from the parser's own buffer.
    std::string big(300000, 'z');
    std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\n" + big +
                       "\r\n--" + boundary + "--";
    std::string_view fed;
    std::size_t in_chunk = 0, copied = 0;
    parser p(boundary, {[](const multipart::part_header&) {},
                        [&](std::string_view d) {
                            const bool inside = d.data() >= fed.data() && d.data() + d.size() <= fed.data() + fed.size();
                            (inside ? in_chunk : copied) += d.size();
                        },
                        [] {}});
    std::size_t chunks = 0;
    for (std::size_t at = 0; at < body.size(); at += 65536, ++chunks) {
        fed = std::string_view(body).substr(at, 65536);
        REQUIRE_FALSE(p.feed(fed));
    }
    CHECK(p.done());
    CHECK(in_chunk + copied == big.size());
    CHECK(copied <= chunks * (boundary.size() + 8));
}

TEST_CASE("multipart: boundary_of tells a wrong type from a broken boundary", "[multipart]") {
    auto ok = multipart::boundary_of("multipart/form-data; boundary=abc");
    REQUIRE(ok);
    CHECK(*ok == "abc");
    auto code = [](std::string_view ct) {
        auto r = multipart::boundary_of(ct);
        return r ? errc::ok : r.error().code;
    };
    // Not multipart, or no boundary: the media type is the problem (415).
    CHECK(code("text/plain") == errc::unsupported_media_type);
    CHECK(code("application/json") == errc::unsupported_media_type);
    CHECK(code("multipart/form-data") == errc::unsupported_media_type);
    CHECK(code("multipart/form-data; boundary=") == errc::unsupported_media_type);
    // A boundary that is there but broken: the request is malformed (400), with a reason.
    CHECK(code("multipart/form-data; boundary=" + std::string(70, 'x')) == errc::ok);
    auto long_one = multipart::boundary_of("multipart/form-data; boundary=" + std::string(71, 'x'));
    REQUIRE_FALSE(long_one);
    CHECK(long_one.error().code == errc::bad_request);
    CHECK_THAT(long_one.error().message, Catch::Contains("70 characters"));
    CHECK(code("multipart/form-data; boundary=\"ab\x01" "c\"") == errc::bad_request);
    CHECK(code("multipart/form-data; boundary=\"abc \"") == errc::bad_request);
}

TEST_CASE("multipart: broken parts are refused with a clear reason", "[multipart]") {
    auto body_with = [](std::string headers) {
        return "--" + boundary + "\r\n" + headers + "\r\n\r\ndata\r\n--" + boundary + "--\r\n";
    };
    // A header line that is not "Name: value" (garbage where the part's headers should be).
    auto o1 = parse(boundary, body_with("Content-Disposition: form-data; name=\"a\"\r\n\x01\x02garbage"), {});
    CHECK(o1.failed);
    CHECK_THAT(o1.message, Catch::Contains("not 'Name: value'"));
    // A nested multipart body inside a part.
    auto o2 = parse(boundary,
                    body_with("Content-Disposition: form-data; name=\"file\"\r\nContent-Type: multipart/mixed; boundary=in"),
                    {});
    CHECK(o2.failed);
    CHECK_THAT(o2.message, Catch::Contains("nested multipart"));
    // No part headers at all.
    auto o3 = parse(boundary, "--" + boundary + "\r\n\r\ndata\r\n--" + boundary + "--\r\n", {});
    CHECK(o3.failed);
    CHECK_THAT(o3.message, Catch::Contains("Content-Disposition"));
}

TEST_CASE("multipart: started tells whether the boundary ever appeared", "[multipart]") {
    parser never(boundary, {});
    REQUIRE_FALSE(never.feed("this body never mentions the boundary\r\n--other--\r\n"));
    CHECK_FALSE(never.started());
    CHECK_FALSE(never.done());
    parser seen(boundary, {[](const multipart::part_header&) {}, [](std::string_view) {}, [] {}});
    REQUIRE_FALSE(seen.feed("--" + boundary + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"));
    CHECK(seen.started());
    CHECK_FALSE(seen.done());
}
