// The job model the store persists: option parsing and validation, job ids, and the JSON of params and outputs.
#include "quickthumb/job.hpp"
#include "support/catch_result.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace quickthumb;

TEST_CASE("job params: defaults and validation", "[store]") {
    auto p = parse_job_params({});
    REQUIRE(p);
    CHECK(p->sizes == std::vector<box>{{256, 256}});
    CHECK(p->fit == fit_mode::contain);
    CHECK(p->format == output_format::jpeg);
    CHECK(p->quality == 80);
    CHECK_FALSE(p->progressive);
    CHECK_FALSE(p->enlarge);
    CHECK_FALSE(p->keep_metadata);
    CHECK(p->background == colour{255, 255, 255});

    auto w = parse_job_params({{"width", "100"}});
    REQUIRE(w);
    CHECK(w->sizes == std::vector<box>{{100, 0}});  // the aspect ratio decides the height

    auto full = parse_job_params({{"width", "100"}, {"height", "50"}, {"fit", "cover"}, {"format", "png"}, {"quality", "90"}});
    REQUIRE(full);
    CHECK(full->sizes == std::vector<box>{{100, 50}});
    CHECK(full->fit == fit_mode::cover);
    CHECK(full->format == output_format::png);
    CHECK(full->quality == 90);

    // A one-sided box works in every mode: the engine scales to that side.
    auto cover_one = parse_job_params({{"width", "100"}, {"fit", "cover"}});
    REQUIRE(cover_one);
    CHECK(cover_one->sizes == std::vector<box>{{100, 0}});

    auto bad = [](std::multimap<std::string, std::string> f) {
        auto r = parse_job_params(f);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        return r.error().message;
    };
    CHECK_THAT(bad({{"width", "0"}}), Catch::Contains("width"));
    CHECK_THAT(bad({{"width", "abc"}}), Catch::Contains("width"));
    CHECK_THAT(bad({{"height", "99999"}}), Catch::Contains("height") && Catch::Contains("8192"));
    CHECK_THAT(bad({{"quality", "101"}}), Catch::Contains("quality"));
    CHECK_THAT(bad({{"fit", "stretch"}}), Catch::Contains("contain") && Catch::Contains("fill"));
    CHECK_THAT(bad({{"format", "gif"}}), Catch::Contains("format") && Catch::Contains("webp"));
    CHECK_THAT(bad({{"colour", "red"}}), Catch::Contains("unknown option") && Catch::Contains("sizes"));
    CHECK_THAT(bad({{"width", "1"}, {"width", "2"}}), Catch::Contains("more than once"));
}

TEST_CASE("job params: sizes and the new output options", "[store]") {
    auto p = parse_job_params({{"sizes", "128,256, 1024"}});
    REQUIRE(p);
    CHECK(p->sizes == std::vector<box>{{128, 128}, {256, 256}, {1024, 1024}});

    auto mixed = parse_job_params({{"sizes", "640x480,300x,x200,64,64x64,8192"}});
    REQUIRE(mixed);
    // 64 and 64x64 are the same box: one output.
    CHECK(mixed->sizes == std::vector<box>{{640, 480}, {300, 0}, {0, 200}, {64, 64}, {8192, 8192}});

    auto opts = parse_job_params({{"fit", "fill"},
                                  {"format", "webp"},
                                  {"enlarge", "true"},
                                  {"progressive", "1"},
                                  {"keep_metadata", "true"},
                                  {"background", "#FF8000"}});
    REQUIRE(opts);
    CHECK(opts->fit == fit_mode::fill);
    CHECK(opts->format == output_format::webp);
    CHECK(opts->enlarge);
    CHECK(opts->progressive);
    CHECK(opts->keep_metadata);
    CHECK(opts->background == colour{255, 128, 0});
    auto no = parse_job_params({{"enlarge", "0"}, {"progressive", "false"}, {"background", "102030"}, {"format", "jpg"}});
    REQUIRE(no);
    CHECK_FALSE(no->enlarge);
    CHECK_FALSE(no->progressive);
    CHECK(no->background == colour{0x10, 0x20, 0x30});
    CHECK(no->format == output_format::jpeg);

    auto bad = [](std::multimap<std::string, std::string> f) {
        auto r = parse_job_params(f);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        return r.error().message;
    };
    for (std::string s : {"", "0", "8193", "abc", "64,", ",64", "64,,128", "x", "0x0", "0x64", "64x0", "64X64",
                          "64x64x64", "-5", "+5", "1.5", "1,2,3,4,5,6,7,8,9"}) {
        INFO("sizes=" << s);
        CHECK_THAT(bad({{"sizes", s}}), Catch::Contains("sizes") && Catch::Contains("WxH"));
    }
    CHECK_THAT(bad({{"sizes", "1,2,3,4,5,6,7,8,9"}}), Catch::Contains("more than 8"));
    CHECK(parse_job_params({{"sizes", "1,2,3,4,5,6,7,8"}}));
    CHECK_THAT(bad({{"sizes", "64"}, {"width", "64"}}), Catch::Contains("either sizes or width/height"));
    CHECK_THAT(bad({{"sizes", "64"}, {"height", "64"}}), Catch::Contains("either sizes or width/height"));
    for (std::string name : {"enlarge", "progressive", "keep_metadata"}) {
        CHECK_THAT(bad({{name, "yes"}}), Catch::Contains(name) && Catch::Contains("true, false, 1 or 0"));
        CHECK_THAT(bad({{name, ""}}), Catch::Contains(name));
    }
    for (std::string c : {"", "#fff", "white", "#12345g", "#1234567", "##123456", " 123456"})
        CHECK_THAT(bad({{"background", c}}), Catch::Contains("background") && Catch::Contains("#rrggbb"));
}

TEST_CASE("job params: names and parsers agree", "[store]") {
    for (auto f : {fit_mode::contain, fit_mode::cover, fit_mode::fill}) CHECK(parse_fit_mode(to_string(f)) == f);
    for (auto f : {output_format::jpeg, output_format::png, output_format::webp})
        CHECK(parse_output_format(to_string(f)) == f);
    CHECK(extension(output_format::jpeg) == "jpg");
    CHECK(extension(output_format::webp) == "webp");
    CHECK(mime_type(output_format::webp) == "image/webp");
    CHECK(to_string(colour{0, 0x80, 0xff}) == "#0080ff");
    CHECK(parse_colour("#0080ff") == colour{0, 0x80, 0xff});
}

TEST_CASE("job ids are 22 url-safe characters and unique", "[store]") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = new_job_id();
        CHECK(is_valid_job_id(id));
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);
    CHECK_FALSE(is_valid_job_id("../../etc/passwd"));
    CHECK_FALSE(is_valid_job_id(""));
    CHECK_FALSE(is_valid_job_id("aaaaaaaaaaaaaaaaaaaaa/"));
}

TEST_CASE("job JSON round trip of params and outputs", "[store]") {
    job j;
    j.id = new_job_id();
    j.state = job_state::succeeded;
    j.outputs = {{"thumb_256x128.jpg", 256, 128, 1234}, {"thumb_64x32.jpg", 64, 32, 99}};
    j.last_error = error{errc::corrupt_image, "bad"};
    auto o = to_json(j);
    CHECK(o.at("state").as_string() == "succeeded");
    CHECK(o.at("outputs").as_array().size() == 2);
    CHECK(o.at("outputs").as_array()[0].as_object().at("url").as_string() == "/thumbs/" + j.id + "/thumb_256x128.jpg");
    CHECK(o.at("error").as_object().at("code").as_string() == "corrupt_image");
    const auto& params = o.at("params").as_object();
    CHECK(params.at("sizes").as_array().at(0).at("width").as_int64() == 256);
    CHECK(params.at("background").as_string() == "#ffffff");
    auto outs = outputs_from_json(outputs_to_json(j.outputs));
    REQUIRE(outs.size() == 2);
    CHECK(outs[0].name == "thumb_256x128.jpg");
    CHECK(outs[0].bytes == 1234);
    CHECK(outs[1].name == "thumb_64x32.jpg");

    // Every option survives the store's JSON.
    job_params p;
    p.sizes = {{128, 128}, {300, 0}, {0, 200}, {640, 480}};
    p.fit = fit_mode::fill;
    p.format = output_format::webp;
    p.quality = 55;
    p.progressive = true;
    p.enlarge = true;
    p.background = {1, 2, 3};
    p.keep_metadata = true;
    auto back = job_params_from_json(boost::json::serialize(to_json(p)));
    REQUIRE(back);
    CHECK(back->sizes == p.sizes);
    CHECK(back->fit == p.fit);
    CHECK(back->format == p.format);
    CHECK(back->quality == p.quality);
    CHECK(back->progressive);
    CHECK(back->enlarge);
    CHECK(back->background == p.background);
    CHECK(back->keep_metadata);

}

TEST_CASE("job params stored by an older version stay readable", "[store]") {
    // What the first version wrote: one box as width/height, no new keys.
    auto old = job_params_from_json(R"({"width":300,"height":0,"fit":"cover","format":"png","quality":70})");
    REQUIRE(old);
    CHECK(old->sizes == std::vector<box>{{300, 0}});
    CHECK(old->fit == fit_mode::cover);
    CHECK(old->format == output_format::png);
    CHECK(old->quality == 70);
    CHECK_FALSE(old->enlarge);
    CHECK_FALSE(old->progressive);
    CHECK_FALSE(old->keep_metadata);
    CHECK(old->background == colour{});

    auto defaults = job_params_from_json("{}");
    REQUIRE(defaults);
    CHECK(defaults->sizes == std::vector<box>{{256, 256}});

    CHECK_FALSE(job_params_from_json("[]"));
    CHECK_FALSE(job_params_from_json(R"({"fit":"squash"})"));
    CHECK_FALSE(job_params_from_json(R"({"sizes":[]})"));
    CHECK_FALSE(job_params_from_json(R"({"sizes":[{"width":0,"height":0}]})"));
    CHECK_FALSE(job_params_from_json(R"({"enlarge":"yes"})"));
}
