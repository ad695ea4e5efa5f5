#include "quickthumb/config.hpp"

#include <catch2/catch.hpp>
#include <map>

using namespace quickthumb;

namespace {
env_lookup env_of(std::map<std::string, std::string> m) {
    return [m](const std::string& k) -> std::optional<std::string> {
        auto it = m.find(k);
        if (it == m.end()) return std::nullopt;
        return it->second;
    };
}
}  // namespace

TEST_CASE("config: defaults for serve", "[config]") {
    auto cl = parse_command_line({"serve"}, env_of({}));
    REQUIRE(cl.cmd == command::serve);
    CHECK(cl.serve.port == 8080);
    CHECK(cl.serve.bind == "0.0.0.0");
    CHECK(cl.serve.data_dir == "./data");
    CHECK(cl.serve.workers >= 1);
    CHECK(cl.serve.max_upload == 32ull << 20);
    CHECK(cl.serve.max_pixels == 100'000'000);
}

TEST_CASE("config: flags / env and precedence", "[config]") {
    auto env = env_of({{"QUICKTHUMB_PORT", "9000"}, {"QUICKTHUMB_DATA", "/tmp/x"}, {"QUICKTHUMB_WORKERS", "3"}});
    auto cl = parse_command_line({"serve", "--port", "9100", "--max-upload=8M"}, env);
    CHECK(cl.serve.port == 9100);  // flag wins over env
    CHECK(cl.serve.data_dir == "/tmp/x");
    CHECK(cl.serve.workers == 3);
    CHECK(cl.serve.max_upload == 8ull << 20);
    CHECK(parse_command_line({"serve", "--workers", "0"}, env_of({})).serve.workers == 0);
    CHECK(parse_command_line({"serve", "--port", "0"}, env_of({})).serve.port == 0);
}

TEST_CASE("config: sizes", "[config]") {
    CHECK(parse_size("x", "1024") == 1024);
    CHECK(parse_size("x", "4k") == 4096);
    CHECK(parse_size("x", "32MiB") == 32ull << 20);
    CHECK(parse_size("x", "1G") == 1ull << 30);
    CHECK_THROWS_AS(parse_size("x", "12Q"), config_error);
    CHECK_THROWS_AS(parse_size("x", "-1"), config_error);
    CHECK_THROWS_AS(parse_size("x", ""), config_error);
}

TEST_CASE("config: bad values are refused with a message naming the flag", "[config]") {
    auto msg = [](std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
        try {
            parse_command_line(args, env_of(env));
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(msg({"serve", "--port", "70000"}), Catch::Contains("--port"));
    CHECK_THAT(msg({"serve", "--port", "abc"}), Catch::Contains("--port"));
    CHECK_THAT(msg({"serve", "--workers", "-2"}), Catch::Contains("--workers"));
    CHECK_THAT(msg({"serve", "--log-level", "loud"}), Catch::Contains("debug, info, warn or error"));
    CHECK_THAT(msg({"serve", "--nope", "1"}), Catch::Contains("unknown flag --nope"));
    CHECK_THAT(msg({"serve", "--port"}), Catch::Contains("missing value"));
    CHECK_THAT(msg({"serve", "--redis", "http://x"}), Catch::Contains("redis://"));
    CHECK_THAT(msg({"serve"}, {{"QUICKTHUMB_PORT", "x"}}), Catch::Contains("QUICKTHUMB_PORT"));
    CHECK_THAT(msg({"frobnicate"}), Catch::Contains("unknown command"));
    CHECK_THAT(msg({"serve", "--max-upload", "10"}), Catch::Contains("at least"));
}

TEST_CASE("config: help and version", "[config]") {
    CHECK(parse_command_line({}, env_of({})).cmd == command::help);
    CHECK(parse_command_line({"--help"}, env_of({})).cmd == command::help);
    CHECK(parse_command_line({"--version"}, env_of({})).cmd == command::version);
    CHECK(parse_command_line({"serve", "--help"}, env_of({})).cmd == command::help);
    CHECK_THAT(usage(), Catch::Contains("--max-pixels"));
}

namespace {
// The config_error message for `args`, or "no error".
std::string thumb_error(std::vector<std::string> args) {
    try {
        parse_command_line(args, env_of({}));
    } catch (const config_error& e) {
        return std::string(e.what());
    }
    return std::string("no error");
}
}  // namespace

TEST_CASE("config: thumb command line", "[config]") {
    auto t = parse_command_line({"thumb", "a.jpg", "b.png", "-s", "128", "-o", "out/%s_128.webp", "--fit", "cover",
                                 "-q", "70", "--enlarge", "-j", "3", "--progressive", "--background", "#102030",
                                 "--max-pixels", "5000"},
                                env_of({}));
    REQUIRE(t.cmd == command::thumb);
    CHECK(t.thumb.inputs == std::vector<std::string>{"a.jpg", "b.png"});
    CHECK(t.thumb.width == 128);
    CHECK(t.thumb.height == 128);
    CHECK(t.thumb.pattern == "out/%s_128.webp");
    CHECK(t.thumb.format == image::out_format::webp);
    CHECK(t.thumb.fit == image::fit::cover);
    CHECK(t.thumb.quality == 70);
    CHECK(t.thumb.enlarge);
    CHECK(t.thumb.progressive);
    CHECK(t.thumb.background == image::rgb{0x10, 0x20, 0x30});
    CHECK(t.thumb.jobs == 3);
    CHECK(t.thumb.max_pixels == 5000);
}

TEST_CASE("config: thumb defaults", "[config]") {
    auto d = parse_command_line({"thumb", "a.jpg"}, env_of({}));
    REQUIRE(d.cmd == command::thumb);
    CHECK(d.thumb.width == 256);
    CHECK(d.thumb.height == 256);
    CHECK(d.thumb.pattern == "tn_%s.jpg");
    CHECK(d.thumb.format == image::out_format::jpeg);
    CHECK(d.thumb.fit == image::fit::contain);
    CHECK(d.thumb.quality == 80);
    CHECK_FALSE(d.thumb.enlarge);
    CHECK_FALSE(d.thumb.progressive);
    CHECK(d.thumb.background == image::rgb{255, 255, 255});
    CHECK(d.thumb.jobs == 0);
}

TEST_CASE("config: thumb -s follows vipsthumbnail", "[config]") {
    auto box = [](std::string s) {
        auto t = parse_command_line({"thumb", "a.jpg", "-s", s}, env_of({})).thumb;
        return std::pair{t.width, t.height};
    };
    CHECK(box("256") == std::pair{256, 256});
    CHECK(box("200x100") == std::pair{200, 100});
    CHECK(box("200x0") == std::pair{200, 0});
    CHECK(box("256x") == std::pair{256, 0});
    CHECK(box("x256") == std::pair{0, 256});
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "0x0"}), Catch::Contains("at least one side"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "x"}), Catch::Contains("at least one side"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "0"}), Catch::Contains("whole number"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "big"}), Catch::Contains("whole number"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "20x20x20"}), Catch::Contains("whole number"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s", "99999"}), Catch::Contains("-s: expected a whole number"));
}

TEST_CASE("config: thumb output pattern picks the format", "[config]") {
    auto fmt = [](std::string pattern) {
        return parse_command_line({"thumb", "a.jpg", "-o", pattern}, env_of({})).thumb.format;
    };
    CHECK(fmt("%s.jpg") == image::out_format::jpeg);
    CHECK(fmt("out/%s.JPEG") == image::out_format::jpeg);
    CHECK(fmt("%s_t.png") == image::out_format::png);
    CHECK(fmt("some.dir/%s.webp") == image::out_format::webp);
    CHECK(fmt("one.jpg") == image::out_format::jpeg);  // a fixed name is fine for one input
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-o", "x.gif"}), Catch::Contains(".webp"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-o", "out.webp/%s"}), Catch::Contains("picks the format"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-o", "%s"}), Catch::Contains("picks the format"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-o", ""}), Catch::Contains("empty"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "b.jpg", "-o", "fixed.jpg"}), Catch::Contains("%s"));
}

TEST_CASE("config: thumb option forms and help", "[config]") {
    auto t = parse_command_line({"thumb", "--size=64x", "--output=o/%s.png", "--fit=fill", "--quality=9", "--jobs=0",
                                 "--background=1,2,3", "--", "-dash.jpg", "--help"},
                                env_of({}));
    REQUIRE(t.cmd == command::thumb);
    CHECK(t.thumb.inputs == std::vector<std::string>{"-dash.jpg", "--help"});
    CHECK(t.thumb.width == 64);
    CHECK(t.thumb.height == 0);
    CHECK(t.thumb.format == image::out_format::png);
    CHECK(t.thumb.fit == image::fit::fill);
    CHECK(t.thumb.quality == 9);
    CHECK(t.thumb.background == image::rgb{1, 2, 3});

    CHECK(parse_command_line({"thumb", "a.jpg", "--help"}, env_of({})).cmd == command::help);
    CHECK(parse_command_line({"thumb", "-h", "--bogus"}, env_of({})).cmd == command::help);
    CHECK_THAT(thumb_usage(), Catch::Contains("--fit"));
}

TEST_CASE("config: thumb usage errors", "[config]") {
    CHECK_THAT(thumb_error({"thumb"}), Catch::Contains("no input files"));
    CHECK_THAT(thumb_error({"thumb", "-s", "64"}), Catch::Contains("no input files"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "--fit", "squash"}), Catch::Contains("contain, cover or fill"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "--frobnicate"}), Catch::Contains("unknown option"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-s"}), Catch::Contains("missing value"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "-q", "0"}), Catch::Contains("1 to 100"));
    CHECK_THAT(thumb_error({"thumb", "a.jpg", "--enlarge=yes"}), Catch::Contains("takes no value"));
    for (std::string bad : {"zz", "#12345", "#12345g", "1,2", "1,2,3,4", "1,,3", "256,0,0", "-1,0,0"})
        CHECK_THAT(thumb_error({"thumb", "a.jpg", "--background", bad}), Catch::Contains("expected a colour"));
}

TEST_CASE("config: job life flags and durations", "[config]") {
    auto d = parse_command_line({"serve"}, env_of({})).serve;
    CHECK(d.max_attempts == 3);
    CHECK(d.job_timeout == std::chrono::seconds(60));
    CHECK(d.retention == std::chrono::hours(24 * 7));
    CHECK_FALSE(d.keep_uploads);
    CHECK(d.redis.empty());

    CHECK(parse_duration("x", "500ms") == std::chrono::milliseconds(500));
    CHECK(parse_duration("x", "30") == std::chrono::seconds(30));
    CHECK(parse_duration("x", "30s") == std::chrono::seconds(30));
    CHECK(parse_duration("x", "5m") == std::chrono::minutes(5));
    CHECK(parse_duration("x", "2h") == std::chrono::hours(2));
    CHECK(parse_duration("x", "7d") == std::chrono::hours(168));
    CHECK(parse_duration("x", "0") == std::chrono::milliseconds(0));
    CHECK_THROWS_WITH(parse_duration("retention", "1w"), Catch::Contains("--retention") && Catch::Contains("7d"));
    CHECK_THROWS_AS(parse_duration("x", "ms"), config_error);
    CHECK_THROWS_AS(parse_duration("x", "-1s"), config_error);
    CHECK_THROWS_AS(parse_duration("x", "99999999999999999d"), config_error);

    auto c = parse_command_line({"serve", "--max-attempts", "5", "--job-timeout", "2m", "--retention=12h",
                                 "--keep-uploads", "--port", "1"},
                                env_of({}))
                 .serve;
    CHECK(c.max_attempts == 5);
    CHECK(c.job_timeout == std::chrono::minutes(2));
    CHECK(c.retention == std::chrono::hours(12));
    CHECK(c.keep_uploads);  // stands alone, and the next flag is still read
    CHECK(c.port == 1);
    CHECK(parse_command_line({"serve", "--keep-uploads", "false"}, env_of({})).serve.keep_uploads == false);
    CHECK(parse_command_line({"serve"}, env_of({{"QUICKTHUMB_KEEP_UPLOADS", "1"}})).serve.keep_uploads);
    CHECK_THROWS_WITH(parse_command_line({"serve", "--max-attempts", "0"}, env_of({})), Catch::Contains("--max-attempts"));
    CHECK_THROWS_WITH(parse_command_line({"serve", "--job-timeout", "0"}, env_of({})), Catch::Contains("at least 1ms"));
    CHECK_THROWS_WITH(parse_command_line({"serve", "--keep-uploads", "maybe"}, env_of({})), Catch::Contains("true or false"));
    // QUICKTHUMB_REDIS_URL is read too; a flag still wins.
    CHECK(parse_command_line({"serve"}, env_of({{"QUICKTHUMB_REDIS_URL", "redis://127.0.0.1:6379/2"}})).serve.redis ==
          "redis://127.0.0.1:6379/2");
    CHECK(parse_command_line({"serve", "--redis", "redis://h:1/0"}, env_of({{"QUICKTHUMB_REDIS_URL", "redis://x:2/0"}}))
              .serve.redis == "redis://h:1/0");
    CHECK_THROWS_WITH(parse_command_line({"serve"}, env_of({{"QUICKTHUMB_REDIS_URL", "http://x"}})),
                      Catch::Contains("QUICKTHUMB_REDIS_URL"));
}

TEST_CASE("config: object storage flags", "[config]") {
    auto d = parse_command_line({"serve"}, env_of({})).serve;
    CHECK(d.storage.empty());
    CHECK_FALSE(d.s3_path_style);
    CHECK(d.s3_timeout == std::chrono::seconds(15));
    CHECK(d.s3_part_size == 8ull << 20);
    CHECK_FALSE(d.thumb_redirect);
    CHECK(d.public_base_url.empty());

    auto c = parse_command_line({"serve", "--storage", "s3://b/p", "--s3-path-style", "--s3-timeout", "2s",
                                 "--s3-part-size", "16M", "--thumb-redirect", "--public-base-url",
                                 "https://cdn.example.com//"},
                                env_of({}))
                 .serve;
    CHECK(c.storage == "s3://b/p");
    CHECK(c.s3_path_style);
    CHECK(c.s3_timeout == std::chrono::seconds(2));
    CHECK(c.s3_part_size == 16ull << 20);
    CHECK(c.thumb_redirect);
    CHECK(c.public_base_url == "https://cdn.example.com");  // no trailing '/': URLs join with one
    CHECK(parse_command_line({"serve"}, env_of({{"QUICKTHUMB_STORAGE", "s3://from-env"}})).serve.storage == "s3://from-env");

    auto refused = [](std::vector<std::string> args, const std::string& says) {
        args.insert(args.begin(), "serve");
        CHECK_THROWS_WITH(parse_command_line(args, env_of({})), Catch::Contains(says));
    };
    refused({"--storage", "/var/data"}, "--storage: expected s3://BUCKET[/PREFIX]");
    refused({"--s3-part-size", "1M"}, "--s3-part-size: S3 takes parts from 5MiB to 5GiB");
    refused({"--s3-timeout", "5ms"}, "--s3-timeout: must be at least 10ms");
    refused({"--public-base-url", "cdn.example.com"}, "--public-base-url: expected an http(s) URL");
}

TEST_CASE("config: the job store for several instances", "[config]") {
    CHECK_FALSE(parse_command_line({"serve"}, env_of({})).serve.redis_store);
    auto c = parse_command_line({"serve", "--store", "redis", "--redis", "redis://127.0.0.1:6379/2", "--storage",
                                 "s3://shared", "--redis-claim-idle", "15s"},
                                env_of({}))
                 .serve;
    CHECK(c.redis_store);
    CHECK(c.redis_claim_idle == std::chrono::seconds(15));
    CHECK(parse_command_line({"serve", "--store", "sqlite"}, env_of({})).serve.redis_store == false);
    CHECK(parse_command_line({"serve"}, env_of({{"QUICKTHUMB_STORE", "redis"}, {"QUICKTHUMB_REDIS_URL", "redis://r:6379"},
                                                {"QUICKTHUMB_STORAGE", "s3://b"}}))
              .serve.redis_store);
    auto refused = [](std::vector<std::string> args, const std::string& says) {
        args.insert(args.begin(), "serve");
        CHECK_THROWS_WITH(parse_command_line(args, env_of({})), Catch::Contains(says));
    };
    refused({"--store", "postgres"}, "--store: expected sqlite");
    refused({"--store", "redis", "--storage", "s3://b"}, "--store redis: needs --redis URL");
    refused({"--store", "redis", "--redis", "redis://127.0.0.1:6379"}, "--store redis: needs --storage s3://");
}
