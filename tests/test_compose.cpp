// compose.yaml, read by podman-compose's own parser (tests/compose/config.py: Debian's
// podman-compose has no `config` command) without starting anything (images cannot be pulled
// here): two instances on one shared configuration that the service itself accepts, Redis with its
// append-only file and no eviction, an S3-compatible server and the bucket made for it.
#include "quickthumb/config.hpp"

#include "support/run_process.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace json = boost::json;

namespace {

std::string text(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : json::serialize(v); }

}  // namespace

TEST_CASE("compose.yaml: two instances on one Redis with AOF and one bucket, on flags the service accepts",
          "[compose]") {
    if (!std::filesystem::exists("/usr/bin/podman-compose")) {
        WARN("podman-compose is not installed: skipping (scripts/setup --test installs it)");
        return;
    }
    const auto r = qt_test::run_process({"/usr/bin/python3", QT_SOURCE_DIR "/tests/compose/config.py",
                                         QT_SOURCE_DIR "/compose.yaml"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    const auto cfg = json::parse(r.out).as_object();
    const auto& services = cfg.at("services").as_object();
    std::vector<const json::object*> instances;
    for (const auto& [name, s] : services)
        if (std::string(name).starts_with("quickthumb-")) instances.push_back(&s.as_object());
    REQUIRE(instances.size() == 2);
    // One configuration for both; a port and a data volume each.
    CHECK(instances[0]->at("environment") == instances[1]->at("environment"));
    CHECK(instances[0]->at("ports") != instances[1]->at("ports"));
    CHECK(instances[0]->at("volumes") != instances[1]->at("volumes"));
    // The service takes that environment as it is, as several instances on Redis and a bucket.
    const auto& env = instances[0]->at("environment").as_object();
    const quickthumb::env_lookup lookup = [&env](const std::string& k) -> std::optional<std::string> {
        if (auto it = env.find(k); it != env.end()) return text(it->value());
        return std::nullopt;
    };
    const auto c = quickthumb::parse_command_line({"serve"}, lookup).serve;
    CHECK(c.redis_store);
    CHECK(c.storage.starts_with("s3://"));
    // Its Redis and its endpoint are services of the file.
    CHECK(services.contains("redis"));
    CHECK_THAT(c.redis, Catch::Contains("//redis:"));
    const std::string endpoint = text(env.at("AWS_ENDPOINT_URL"));
    const auto host = endpoint.substr(endpoint.find("//") + 2, endpoint.rfind(':') - endpoint.find("//") - 2);
    REQUIRE(services.contains(host));
    // Redis keeps every accepted job: an append-only file and no eviction.
    const std::string redis_cmd = text(services.at("redis").at("command"));
    CHECK_THAT(redis_cmd, Catch::Contains("\"--appendonly\",\"yes\"") && Catch::Contains("\"--maxmemory-policy\",\"noeviction\""));
    // The bucket the instances name is made by a service of the file.
    const std::string bucket = c.storage.substr(5);
    bool made = false;
    for (const auto& [name, s] : services)
        if (text(s.as_object().contains("command") ? s.at("command") : json::value()).find("mb --ignore-existing local/" + bucket) !=
            std::string::npos)
            made = true;
    CHECK(made);
}
