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
