// The route table (src/http/routes.cpp) and what reads it: the match, the 405's Allow, the metrics
// label, the access guard. Pure: no server.
#include "http/access.hpp"
#include "http/routes.hpp"

#include <catch2/catch.hpp>

using namespace quickthumb::http;
namespace bhttp = boost::beast::http;

TEST_CASE("routes: a path and a method find their route and its parameters", "[http][routes]") {
    auto m = match_route("/api/v1/jobs/abc", bhttp::verb::delete_);
    REQUIRE(m.found);
    CHECK(m.found->target == endpoint::cancel_job);
    CHECK(m.params == std::vector<std::string_view>{"abc"});
    CHECK(m.label == "/api/v1/jobs/{id}");

    m = match_route("/thumbs/abc/thumb_1x1.jpg", bhttp::verb::head);
    REQUIRE(m.found);
    CHECK(m.found->target == endpoint::thumb);
    CHECK(m.params == std::vector<std::string_view>{"abc", "thumb_1x1.jpg"});

    m = match_route("/api/v1/jobs", bhttp::verb::post);
    REQUIRE(m.found);
    CHECK(m.found->kind == handler_kind::upload);
    m = match_route("/api/v1/jobs", bhttp::verb::get);
    REQUIRE(m.found);
    CHECK(m.found->target == endpoint::list_jobs);
    m = match_route("/api/v1/events", bhttp::verb::get);
    REQUIRE(m.found);
    CHECK(m.found->kind == handler_kind::stream);
    // Empty segments are dropped, as before.
    m = match_route("//api//v1/jobs/x/retry", bhttp::verb::post);
    REQUIRE(m.found);
    CHECK(m.found->target == endpoint::retry_job);
}

TEST_CASE("routes: a known path with another method is a 405 listing every method it takes", "[http][routes]") {
    auto m = match_route("/api/v1/jobs/abc", bhttp::verb::put);
    CHECK_FALSE(m.found);
    CHECK(m.allow == "GET, HEAD, DELETE");
    CHECK(m.label == "/api/v1/jobs/{id}");
    m = match_route("/api/v1/jobs", bhttp::verb::delete_);
    CHECK(m.allow == "POST, GET, HEAD");
    m = match_route("/api/v1/jobs/x/retry", bhttp::verb::get);
    CHECK(m.allow == "POST");
    m = match_route("/healthz", bhttp::verb::post);
    CHECK(m.allow == "GET, HEAD");
    CHECK(m.label == "/healthz");
    m = match_route("/api/v1/events", bhttp::verb::post);
    CHECK(m.allow == "GET, HEAD");
}

TEST_CASE("routes: the page's files, and what no route names", "[http][routes]") {
    auto m = match_route("/", bhttp::verb::get);
    REQUIRE(m.found);
    CHECK(m.found->target == endpoint::page);
    CHECK(m.label == "static");
    m = match_route("/app.js", bhttp::verb::head);
    REQUIRE(m.found);
    CHECK(m.label == "static");
    CHECK(match_route("/openapi.json", bhttp::verb::get).label == "/openapi.json");
    // Another method on a page file is "nothing here", not a 405.
    m = match_route("/index.html", bhttp::verb::post);
    CHECK_FALSE(m.found);
    CHECK(m.allow.empty());
    CHECK(m.label == "other");
    for (const auto* path : {"/api/v1/nope", "/api/v2/jobs", "/api/v1", "/thumbs/x", "/api/v1/jobs/a/b"}) {
        INFO(path);
        m = match_route(path, bhttp::verb::get);
        CHECK_FALSE(m.found);
        CHECK(m.allow.empty());
        CHECK(m.label == "other");
        CHECK(route_label(path, bhttp::verb::get) == "other");
    }
}

TEST_CASE("routes: the guard of each route comes from the table - all of /api needs the token", "[http][routes]") {
    for (const auto& r : routes()) {
        if (r.fallback) continue;
        std::string path(r.pattern);
        for (auto at = path.find('{'); at != std::string::npos; at = path.find('{'))
            path.replace(at, path.find('}', at) - at + 1, "x");
        INFO(path);
        CHECK(guard_for(path) == r.access);
        CHECK((r.access == guard::api) == path.starts_with("/api/"));
    }
    CHECK(guard_for("/api/v2/anything") == guard::api);  // unknown, still guarded
    CHECK(guard_for("/api") == guard::api);
    CHECK(guard_for("/metrics") == guard::metrics);
    CHECK(guard_for("/index.html") == guard::open);
}
