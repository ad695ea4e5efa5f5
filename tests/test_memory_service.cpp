// The memory budget in the real binary: jobs reserve their estimated peak before they decode,
// wait while the budget is spent, fail clearly when they could never fit; /readyz and /metrics
// show it; the CLI honours it too.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "quickthumb/memory_limit.hpp"
#include "support/eventually.hpp"
#include "support/image_files.hpp"
#include "support/json.hpp"
#include "support/prometheus_text.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"

#include <boost/json.hpp>

#include <csignal>
#include <fstream>

using namespace qt_test;
namespace json = boost::json;
namespace img = quickthumb::image;
using namespace std::chrono_literals;

namespace {

std::string as_string(const bytes& b) { return {b.begin(), b.end()}; }

std::string upload_one(unsigned short port, const bytes& file, const std::string& name) {
    auto r = upload(port, {{"file", name, "application/octet-stream", as_string(file)}});
    REQUIRE(r.status == 202);
    return str(parse_object(r.body).at("id"));
}

// What the service will reserve for this file with the default options.
std::uint64_t estimate_of(const bytes& file) {
    auto e = img::estimate_memory(file, img::thumbnails_request{});
    REQUIRE(e.has_value());
    return *e;
}

json::object readiness_memory(unsigned short port) {
    auto r = http_request(port, "GET", "/readyz");
    REQUIRE(r.status == 200);
    return parse_object(r.body).at("memory").as_object();
}

}  // namespace

TEST_CASE("memory: a job that would take more than the whole budget fails at once, clearly", "[memory][worker]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "1", "--max-memory", "16M"});
    // Interlaced: the decoder holds all 3000x2000x3 bytes, more than 16 MiB.
    const bytes file = png_file(photo_like(3000, 2000, 3), {.interlaced = true});
    REQUIRE(estimate_of(file) > (16u << 20));
    const auto id = upload_one(server.port(), file, "big.png");
    const auto done = parse_object(wait_for_final(server.port(), id, 60s));
    CHECK(str(done.at("state")) == "failed");
    CHECK(done.at("attempts").as_int64() == 1);  // permanent: not retried
    REQUIRE(done.at("error").is_object());
    CHECK(str(done.at("error").at("code")) == "too_large_for_memory");
    const std::string message = str(done.at("error").at("message"));
    CHECK(message.find("3000x2000 interlaced PNG") != std::string::npos);
    CHECK(message.find("memory budget of 16 MiB") != std::string::npos);
    CHECK(done.at("source").at("width").as_int64() == 3000);
    // A small image still goes through.
    const auto small = upload_one(server.port(), jpeg_file(photo_like(640, 480, 3)), "small.jpg");
    CHECK(str(parse_object(wait_for_final(server.port(), small, 60s)).at("state")) == "succeeded");
}

TEST_CASE("memory: two jobs each needing 60% of the budget run one after the other, and both succeed",
          "[memory][worker]") {
    temp_dir dir;
    const bytes file = png_file(photo_like(3000, 2000, 3), {.interlaced = true});
    const std::uint64_t need = estimate_of(file);
    const std::uint64_t budget = need * 10 / 6;
    std::string a, b;
    {
        // Queued with no workers, so that both are handed to the two workers at once at the next start.
        server_process server(dir.path(), {"--workers", "0"});
        a = upload_one(server.port(), file, "a.png");
        b = upload_one(server.port(), file, "b.png");
        CHECK(server.stop(SIGTERM) == 0);
    }
    server_process server(dir.path(), {"--workers", "2", "--max-memory", std::to_string(budget)});
    CHECK(str(parse_object(wait_for_final(server.port(), a, 60s)).at("state")) == "succeeded");
    CHECK(str(parse_object(wait_for_final(server.port(), b, 60s)).at("state")) == "succeeded");
    const auto metrics = http_request(server.port(), "GET", "/metrics").body;
    CHECK(value(metrics, "quickthumb_memory_budget_bytes") == double(budget));
    CHECK(value(metrics, "quickthumb_memory_waits_total") == 1);  // the second waited for the first
    CHECK(value(metrics, "quickthumb_memory_reserved_bytes") == 0);
    CHECK(value(metrics, "quickthumb_jobs_waiting_for_memory") == 0);
    const auto ready = readiness_memory(server.port());
    CHECK(ready.at("budget_bytes").as_int64() == std::int64_t(budget));
    CHECK(ready.at("reserved_bytes").as_int64() == 0);
    CHECK(ready.at("waiting_jobs").as_int64() == 0);
}

TEST_CASE("memory: a job waiting for memory is cancelled by DELETE without waiting its turn", "[memory][worker]") {
    temp_dir dir;
    // Slow decodes to wait behind: noise, progressive (every coefficient held), of two sizes so
    // that what is reserved tells which of the two holds the memory.
    auto noisy = [](int w, int h, unsigned seed) {
        auto p = photo_like(w, h, 3, seed);
        for (std::size_t i = 0; i < p.data.size(); ++i) p.data[i] = static_cast<std::uint8_t>((i + seed) * 2654435761u >> 13);
        return jpeg_file(p, {.quality = 98, .progressive = true});
    };
    const bytes big = noisy(4000, 4000, 7), smaller = noisy(4000, 3000, 9);
    const std::int64_t need_big = std::int64_t(estimate_of(big)), need_smaller = std::int64_t(estimate_of(smaller));
    REQUIRE(big.size() < (32u << 20));
    std::string id_big, id_smaller;
    {
        // Queued with no workers, so that both are handed to the two workers at once at the next start.
        server_process server(dir.path(), {"--workers", "0"});
        id_big = upload_one(server.port(), big, "big.jpg");
        id_smaller = upload_one(server.port(), smaller, "smaller.jpg");
        CHECK(server.stop(SIGTERM) == 0);
    }
    // Room for either, not for both.
    server_process server(dir.path(), {"--workers", "2", "--max-memory", std::to_string(need_big * 5 / 4)});
    eventually([&] { return readiness_memory(server.port()).at("waiting_jobs").as_int64() == 1; }, 60s,
               "one job waits for the other's memory");
    const auto held = readiness_memory(server.port()).at("reserved_bytes").as_int64();
    REQUIRE((held == need_big || held == need_smaller));
    const std::string running = held == need_big ? id_big : id_smaller, waiting = held == need_big ? id_smaller : id_big;
    CHECK(http_request(server.port(), "DELETE", "/api/v1/jobs/" + waiting).status == 200);
    CHECK(str(parse_object(wait_for_final(server.port(), waiting, 60s)).at("state")) == "cancelled");
    // Its wait ended at once: the other is still decoding (noise takes a while), nothing waits.
    const auto ready = readiness_memory(server.port());
    CHECK(ready.at("waiting_jobs").as_int64() == 0);
    CHECK(ready.at("reserved_bytes").as_int64() == held);
    CHECK(str(parse_object(wait_for_final(server.port(), running, 120s)).at("state")) == "succeeded");
    CHECK(readiness_memory(server.port()).at("reserved_bytes").as_int64() == 0);
}

TEST_CASE("memory: by default the budget is a share of the memory limit found at start", "[memory]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0"});
    const auto expected = quickthumb::default_memory_budget(quickthumb::detect_memory_limit());
    CHECK(readiness_memory(server.port()).at("budget_bytes").as_int64() == std::int64_t(expected));
    CHECK(server.output().find("msg=\"memory budget\"") != std::string::npos);
}

TEST_CASE("memory: the CLI refuses a file over its budget and does the others", "[memory][cli]") {
    temp_dir dir;
    const auto big = dir.path() / "big.png", small = dir.path() / "small.jpg";
    for (const auto& [path, data] : {std::pair{big, png_file(photo_like(3000, 2000, 3), {.interlaced = true})},
                                     std::pair{small, jpeg_file(photo_like(640, 480, 3))}}) {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    }
    const auto r = run_process({QT_BINARY_PATH, "thumb", big.string(), small.string(), "--max-memory", "16M", "-o",
                                (dir.path() / "out_%s.jpg").string()});
    CHECK(r.status == 1);
    CHECK(r.err.find("big.png: decoding this 3000x2000 interlaced PNG takes about") != std::string::npos);
    CHECK(r.err.find("memory budget of 16 MiB") != std::string::npos);
    CHECK(std::filesystem::exists(dir.path() / "out_small.jpg"));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "out_big.jpg"));
}
