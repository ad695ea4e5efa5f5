// Black-box durability under SIGKILL (issue 4): the real binary, killed again and again under
// load, loses no accepted job, finishes none twice and leaves no output half-written. Every wait is
// for a condition, bounded by a deadline that only a failure reaches; kill points are chosen by
// counts of accepted uploads, never by time.
//
// Environment knobs (all optional): QT_DURABILITY_SEED (repeat a run), QT_DURABILITY_KILLS
// (at least 12), QT_DURABILITY_MIN_ACCEPTED (default 300, 200 under ASan).
#include "quickthumb/image.hpp"
#include "support/durability.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace qt_test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    try {
        return std::stoi(v);
    } catch (const std::exception&) {
        return fallback;
    }
}

std::string png_of(const quickthumb::image::pixels& p) { return as_string(quickthumb::image::encode_png(p)); }

}  // namespace

TEST_CASE("durability: SIGKILL under load loses no accepted job and leaves no half-written output",
          "[durability][kill]") {
    const int min_kills = std::max(12, env_int("QT_DURABILITY_KILLS", 12));
    const int min_accepted = std::max(1, env_int("QT_DURABILITY_MIN_ACCEPTED", sanitized ? 200 : 300));
    const unsigned seed =
        static_cast<unsigned>(env_int("QT_DURABILITY_SEED", static_cast<int>(std::random_device{}() >> 1)));
    std::printf("durability kill test: seed=%u (QT_DURABILITY_SEED repeats it) min_kills=%d min_accepted=%d\n", seed,
                min_kills, min_accepted);
    std::fflush(stdout);
    std::mt19937 rng(seed);

    temp_dir dir;
    const fs::path data = dir.path() / "data";
    const std::vector<std::string> args = {"--workers", "2", "--max-attempts", "10"};
    launch_options opts;
    opts.drain_output = true;

    // 800x600: a PNG is decoded whole (a few ms), a JPEG at a DCT scale; two outputs per job.
    struct picture {
        std::string name, type, bytes;
    };
    std::vector<picture> pictures;
    for (std::uint32_t i = 0; i < 2; ++i) {
        pictures.push_back({numbered("k", i, ".jpg"), "image/jpeg", jpeg_of(noisy(800, 600, i + 1, 24), 90)});
        pictures.push_back({numbered("k", i, ".png"), "image/png", png_of(noisy(800, 600, i + 11, 6))});
    }
    const std::vector<std::pair<int, int>> expected_sizes = {{64, 48}, {128, 96}};

    // Shared with the client threads, under `m`. port 0: no server to talk to (being killed);
    // generation counts the starts, so that a client can tell a kill from a failure of a live server.
    std::mutex m;
    std::condition_variable cv;
    unsigned short port = 0;
    int generation = 0;
    bool done = false;
    std::vector<std::string> accepted;
    int accepted_since_start = 0;
    int connection_errors = 0;
    std::vector<std::string> unexpected;  // any answer but 202, or a failed request, from a live server

    auto client = [&](int k) {
        for (int n = 0;; ++n) {
            unsigned short p = 0;
            int gen = 0;
            {
                std::unique_lock lk(m);
                cv.wait(lk, [&] { return done || port != 0; });
                if (done) return;
                p = port;
                gen = generation;
            }
            const auto& pic = pictures[static_cast<std::size_t>(k + n) % pictures.size()];
            try {
                auto r = upload(p, {{"file", pic.name, pic.type, pic.bytes}}, {}, "?sizes=64,128");
                std::string id;
                if (r.status == 202) {
                    try {
                        id = std::string(json::parse(r.body).at("id").as_string());
                    } catch (const std::exception&) {
                    }
                }
                std::lock_guard lk(m);
                if (!id.empty()) {
                    accepted.push_back(id);
                    ++accepted_since_start;
                    cv.notify_all();
                } else {
                    unexpected.push_back(std::to_string(r.status) + " " + r.body);
                }
            } catch (const std::exception& e) {
                // The server died under the request: expected, not counted. The port is cleared
                // before each kill, so a failure while it is still set is the live server's.
                std::lock_guard lk(m);
                if (port == p && generation == gen)
                    unexpected.push_back(std::string("request failed on a live server: ") + e.what());
                else
                    ++connection_errors;
            }
        }
    };

    std::vector<std::thread> clients;
    // Whatever happens below (a REQUIRE throws too), the clients are told to stop and joined.
    struct joiner {
        std::mutex& m;
        std::condition_variable& cv;
        bool& done;
        std::vector<std::thread>& threads;
        void stop() {
            {
                std::lock_guard lk(m);
                done = true;
            }
            cv.notify_all();
            for (auto& t : threads)
                if (t.joinable()) t.join();
        }
        ~joiner() { stop(); }
    } stop_clients{m, cv, done, clients};
    for (int k = 0; k < 4; ++k) clients.emplace_back(client, k);

    int kills = 0, kills_while_processing = 0;
    const auto run_deadline = steady::now() + (sanitized ? 300s : 100s);
    auto total_accepted = [&] {
        std::lock_guard lk(m);
        return static_cast<int>(accepted.size());
    };
    while (kills < min_kills || total_accepted() < min_accepted) {
        INFO("kills so far: " << kills << ", accepted so far: " << total_accepted());
        REQUIRE(steady::now() < run_deadline);
        auto server = std::make_unique<server_process>(data, args, opts);
        const int target = std::uniform_int_distribution<int>(10, 40)(rng);
        {
            std::lock_guard lk(m);
            accepted_since_start = 0;
            port = server->port();
            ++generation;
        }
        cv.notify_all();
        bool reached = false;
        {
            std::unique_lock lk(m);
            reached = cv.wait_until(lk, steady::now() + (sanitized ? 120s : 60s),
                                    [&] { return accepted_since_start >= target; });
        }
        if (!reached) FAIL("the server accepted fewer than " << target << " uploads in time; it printed:\n"
                                                             << tail(server->output()));
        // Kill while a worker is busy: the uploads outrun two workers, so one nearly always is;
        // look once more to make it likelier still (a bounded look, never a wait for time).
        bool busy = false;
        for (int look = 0; look < 50 && !busy; ++look) {
            try {
                busy = any_in_state(server->port(), "processing");
            } catch (const std::exception&) {
                break;
            }
        }
        {
            std::lock_guard lk(m);
            port = 0;
        }
        CHECK(server->stop(SIGKILL) == 128 + SIGKILL);
        ++kills;
        if (busy) ++kills_while_processing;
    }
    stop_clients.stop();

    // A start-up's clean-up must empty tmp/ (uploads cut off by the kills): seen on a start without
    // workers, so that nothing else writes meanwhile. Then the final start must finish every job.
    const auto tmp_before = entries(data / "tmp").size();
    std::set<std::string> tmp_after_start;
    {
        server_process idle(data, {"--workers", "0"}, opts);
        tmp_after_start = entries(data / "tmp");
        CHECK(idle.stop(SIGKILL) == 128 + SIGKILL);
    }
    server_process server(data, args, opts);

    std::vector<std::string> ids;
    {
        std::lock_guard lk(m);
        ids = accepted;
    }
    const std::set<std::string> accepted_set(ids.begin(), ids.end());
    auto states = wait_all_final(server.port(), ids, sanitized ? 300s : 90s);

    // Every job the service knows: the accepted ones, and any whose 202 a kill cut off.
    const auto all = list_jobs(server.port());
    std::set<std::string> known;
    int orphans = 0, max_attempts_seen = 0, retried = 0, succeeded = 0, failed = 0;
    std::vector<std::string> not_succeeded;
    output_check files;
    for (const auto& j : all) {
        const std::string id = str(j.at("id"));
        known.insert(id);
        if (!accepted_set.count(id)) ++orphans;
    }
    // Jobs that only the list shows (no 202 reached their client) must finish too.
    std::vector<std::string> orphan_ids;
    for (const auto& id : known)
        if (!accepted_set.count(id)) orphan_ids.push_back(id);
    auto orphan_states = wait_all_final(server.port(), orphan_ids, sanitized ? 180s : 60s);
    for (auto& [id, j] : orphan_states.jobs) states.jobs[id] = j;
    for (const auto& id : orphan_states.unfinished) states.unfinished.push_back(id);

    for (const auto& [id, j] : states.jobs) {
        const std::string state = str(j.at("state"));
        const int attempts = static_cast<int>(j.at("attempts").to_number<std::int64_t>());
        max_attempts_seen = std::max(max_attempts_seen, attempts);
        if (attempts >= 2) ++retried;
        if (state == "succeeded") {
            ++succeeded;
            check_outputs(data, j, files, expected_sizes);
        } else {
            if (state == "failed" || state == "cancelled") ++failed;
            not_succeeded.push_back(id + " state=" + state + " attempts=" + std::to_string(attempts) +
                                    " error=" + json::serialize(j.at("error")));
        }
    }
    // Thumbnail directories of jobs nobody knows, and leftovers of the clean-up.
    std::vector<std::string> stray;
    for (const auto& d : entries(data / "thumbs"))
        if (!known.count(d)) stray.push_back("thumbs/" + d);
    const auto tmp_at_end = entries(data / "tmp");
    const bool queued_left = any_in_state(server.port(), "queued");
    const bool processing_left = any_in_state(server.port(), "processing");

    const int lost = static_cast<int>(states.missing.size() + states.unfinished.size());
    int connection_errors_seen = 0;
    std::vector<std::string> unexpected_seen;
    {
        std::lock_guard lk(m);
        connection_errors_seen = connection_errors;
        unexpected_seen = unexpected;
    }
    std::printf(
        "kills=%d kills_while_processing=%d accepted=%zu orphans=%d finished=%d lost=%d duplicated_outputs=%d "
        "half_written=%d leftover_temp=%d failed=%d retried_jobs=%d max_attempts=%d connection_errors=%d "
        "unexpected_status=%zu tmp_before_final_start=%zu\n",
        kills, kills_while_processing, ids.size(), orphans, succeeded, lost, files.duplicated, files.half_written,
        files.leftover_temp, failed, retried, max_attempts_seen, connection_errors_seen, unexpected_seen.size(),
        tmp_before);
    std::fflush(stdout);

    INFO("seed " << seed << "; the last start printed:\n" << tail(server.output()));
    CHECK(kills >= min_kills);
    CHECK(static_cast<int>(ids.size()) >= min_accepted);
    CHECK(accepted_set.size() == ids.size());  // no id handed out twice
    INFO("lost (404):\n" << first_lines(states.missing) << "never final:\n" << first_lines(states.unfinished));
    CHECK(lost == 0);
    INFO("not succeeded:\n" << first_lines(not_succeeded));
    CHECK(not_succeeded.empty());
    INFO("output problems:\n" << first_lines(files.problems));
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    INFO("stray: " << first_lines(stray));
    CHECK(stray.empty());
    CHECK(tmp_after_start.empty());
    CHECK(tmp_at_end.empty());
    CHECK_FALSE(queued_left);
    CHECK_FALSE(processing_left);
    INFO("answers other than 202 from a live server:\n" << first_lines(unexpected_seen));
    CHECK(unexpected_seen.empty());
    // The kills hit running jobs: some job was started again after one.
    CHECK(max_attempts_seen >= 2);
}
