#include "support/stores.hpp"

#include "quickthumb/redis_store.hpp"

#include "support/server_process.hpp"

#include <cstdlib>
#include <functional>
#include <string_view>

namespace qt_test {

namespace {

bool redis_mode() {
    const char* v = std::getenv("QT_TEST_STORE");
    return v && std::string_view(v) == "redis";
}

redis_process& shared_redis() {
    // Started on first use, stopped at exit.
    static temp_dir dir;
    static redis_process redis(dir.path() / "redis");
    return redis;
}

}  // namespace

std::unique_ptr<quickthumb::job_store> open_store(const std::filesystem::path& path) {
    if (!redis_mode()) return quickthumb::open_sqlite_store(path);
    if (!redis_server_binary()) FAIL("QT_TEST_STORE=redis needs redis-server (apt-get install redis-server)");
    auto url = quickthumb::parse_redis_url(shared_redis().url());
    REQUIRE(url.has_value());
    const auto tag = std::to_string(std::hash<std::string>{}(std::filesystem::absolute(path).string()));
    quickthumb::redis_store_options o;
    o.prefix = "t" + tag + ":";
    o.consumer = "c" + tag;
    return quickthumb::open_redis_store(*url, o);
}

}  // namespace qt_test
