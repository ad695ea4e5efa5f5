// The bucket's settings: the s3:// URL, the AWS variables, and where each object's request goes.
#include "s3/bucket_settings.hpp"

#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <map>

using namespace quickthumb;
using namespace quickthumb::s3;

namespace {

env_lookup env_of(std::map<std::string, std::string, std::less<>> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

const std::map<std::string, std::string, std::less<>> keys{{"AWS_ACCESS_KEY_ID", "AKID"},
                                                           {"AWS_SECRET_ACCESS_KEY", "SECRET"}};

auto with(std::map<std::string, std::string, std::less<>> extra) {
    auto vars = keys;
    for (auto& [k, v] : extra) vars[k] = v;
    return env_of(vars);
}

bucket_location at(std::string bucket, std::string prefix = "") { return {std::move(bucket), std::move(prefix)}; }

}  // namespace

TEST_CASE("s3:// URLs: a bucket and an optional prefix", "[s3]") {
    auto plain = parse_bucket_url("s3://thumbs-1");
    REQUIRE(plain);
    CHECK(plain->bucket == "thumbs-1");
    CHECK(plain->prefix == "");

    auto prefixed = parse_bucket_url("s3://my.bucket/tenant/a/");
    REQUIRE(prefixed);
    CHECK(prefixed->bucket == "my.bucket");
    CHECK(prefixed->prefix == "tenant/a/");
    CHECK(object_key(*prefixed, "thumbs/ab/x_256.webp") == "tenant/a/thumbs/ab/x_256.webp");
    CHECK(object_key(*plain, "uploads/x") == "uploads/x");

    for (const char* bad : {"thumbs", "http://thumbs", "s3://", "s3://ab", "s3://Upper", "s3://-dash",
                            "s3://dash-", "s3://under_score", "s3://a..b", "s3://bucket//x", "s3://bucket/a//b"}) {
        INFO(bad);
        auto r = parse_bucket_url(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        CHECK_FALSE(r.error().message.empty());
    }
    CHECK(parse_bucket_url("s3://" + std::string(63, 'a')));
    CHECK_FALSE(parse_bucket_url("s3://" + std::string(64, 'a')));
}

TEST_CASE("bucket settings: AWS by default, virtual-hosted, the region's endpoint", "[s3]") {
    auto s = settings_from_env(at("photos"), false, with({{"AWS_REGION", "eu-west-3"}, {"AWS_SESSION_TOKEN", "T"}}));
    REQUIRE(s);
    CHECK(s->keys.access_key_id == "AKID");
    CHECK(s->keys.secret_access_key == "SECRET");
    CHECK(s->keys.session_token == "T");
    CHECK(s->region == "eu-west-3");
    CHECK(s->server.tls);
    CHECK(s->server.host == "s3.eu-west-3.amazonaws.com");
    CHECK_FALSE(s->path_style);
    auto t = target_of(*s, "uploads/ab/cd");
    CHECK(t.host == "photos.s3.eu-west-3.amazonaws.com");
    CHECK(t.path == "/uploads/ab/cd");
    CHECK(target_of(*s, "").path == "/");

    auto fallback = settings_from_env(at("photos"), false, with({{"AWS_DEFAULT_REGION", "ap-south-1"}}));
    REQUIRE(fallback);
    CHECK(fallback->region == "ap-south-1");
    auto none = settings_from_env(at("photos"), false, with({}));
    REQUIRE(none);
    CHECK(none->region == "us-east-1");
}

TEST_CASE("bucket settings: a local endpoint, path style, ports", "[s3]") {
    auto s = settings_from_env(at("photos"), true, with({{"AWS_ENDPOINT_URL", "http://localhost:9000"}}));
    REQUIRE(s);
    CHECK_FALSE(s->server.tls);
    CHECK(s->path_style);
    auto t = target_of(*s, "a b/c.jpg");
    CHECK(t.host == "localhost:9000");
    CHECK(t.path == "/photos/a b/c.jpg");
    CHECK(target_of(*s, "").path == "/photos");

    // An IP address has no virtual hosts: path style whatever the switch says.
    auto ip = settings_from_env(at("photos"), false, with({{"AWS_ENDPOINT_URL", "http://127.0.0.1:4568/"}}));
    REQUIRE(ip);
    CHECK(ip->path_style);
    CHECK(target_of(*ip, "k").host == "127.0.0.1:4568");

    // A dotted bucket over TLS would not match the endpoint's wildcard certificate.
    auto dotted = settings_from_env(at("my.photos"), false, with({}));
    REQUIRE(dotted);
    CHECK(dotted->path_style);
    CHECK(target_of(*dotted, "k").host == "s3.us-east-1.amazonaws.com");

    // R2 and the like: virtual-hosted on the provider's host, the default port left out.
    auto r2 = settings_from_env(at("photos"), false, with({{"AWS_ENDPOINT_URL", "https://acct.r2.example.com"}}));
    REQUIRE(r2);
    CHECK(r2->server.port == "443");
    CHECK(target_of(*r2, "k").host == "photos.acct.r2.example.com");
}

TEST_CASE("bucket settings: what is missing or wrong is named", "[s3]") {
    auto no_key = settings_from_env(at("photos"), false, env_of({{"AWS_SECRET_ACCESS_KEY", "S"}}));
    REQUIRE_FALSE(no_key);
    CHECK(no_key.error().message.find("AWS_ACCESS_KEY_ID") != std::string::npos);

    auto no_secret = settings_from_env(at("photos"), false, env_of({{"AWS_ACCESS_KEY_ID", "A"}}));
    REQUIRE_FALSE(no_secret);
    CHECK(no_secret.error().message.find("AWS_SECRET_ACCESS_KEY") != std::string::npos);

    for (const char* bad : {"ftp://host", "localhost:9000", "http://", "http://host:0", "http://host:99999",
                            "http://host/path", "http://host?x=1"}) {
        INFO(bad);
        auto r = settings_from_env(at("photos"), false, with({{"AWS_ENDPOINT_URL", bad}}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_option);
        CHECK(r.error().message.find("AWS_ENDPOINT_URL") != std::string::npos);
    }
}
