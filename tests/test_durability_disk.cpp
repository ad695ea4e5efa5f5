// Black-box durability when the disk fails the service (issue 4): a full disk and a read-only data
// directory get 507, lose no accepted job, and the service recovers by itself once space or the
// mount comes back. The disk is a private tmpfs (unprivileged, through a user namespace); where
// none can be mounted the tests say so and skip.
#include "support/durability.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

extern char** environ;

using namespace qt_test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Runs a command with no output; its exit status (-1 if it cannot start).
int run_quiet(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The wrapper that runs the service in a private mount namespace, on a tmpfs of `size` mounted over
// `dir` (unprivileged, through a user namespace). "$0" is the directory, "$@" the service.
std::vector<std::string> tmpfs_prefix(const fs::path& dir, const std::string& size) {
    return {"unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            "mount -t tmpfs -o size=" + size + " none \"$0\" && exec \"$@\"", dir.string()};
}

void write_ballast(const fs::path& p, std::uintmax_t bytes) {
    std::ofstream out(p, std::ios::binary);
    REQUIRE(out);
    const std::string chunk(1 << 16, '\x5a');
    std::uintmax_t left = bytes;
    while (left > 0 && out) {
        const auto n = std::min<std::uintmax_t>(left, chunk.size());
        out.write(chunk.data(), static_cast<std::streamsize>(n));
        left -= n;
    }
    out.close();
    REQUIRE(fs::file_size(p) == bytes);
}

}  // namespace

TEST_CASE("durability: a full disk gets 507 and the service recovers by itself", "[durability][disk]") {
    temp_dir dir;
    const fs::path mnt = dir.path() / "mnt";
    fs::create_directories(mnt);
    // Can this machine give us a private tmpfs without privileges? If not, say so and skip.
    {
        auto probe = tmpfs_prefix(mnt, "1m");
        probe.insert(probe.end(), {"true"});
        if (run_quiet(probe) != 0) {
            WARN("SKIPPED: cannot mount a private tmpfs (unshare --user --map-root-user --mount sh -c 'mount -t "
                 "tmpfs ...' failed here); the disk-full test did not run");
            return;
        }
    }
    launch_options opts;
    opts.prefix = tmpfs_prefix(mnt, "16m");
    opts.drain_output = true;
    server_process server(mnt / "data", {"--workers", "1", "--max-attempts", "10"}, opts);
    // The tmpfs is seen from here through the server's own root.
    const fs::path inside = fs::path("/proc") / std::to_string(server.pid()) / "root" / mnt.relative_path();
    const fs::path data = inside / "data";
    if (!fs::exists(data / "quickthumb.db")) {
        WARN("SKIPPED: the server's tmpfs is not visible through " << inside.string());
        return;
    }
    auto available = [&] { return fs::space(inside).available; };
    const unsigned short port = server.port();
    std::vector<std::string> ids;

    // Every job here is a pure-noise 600x600 JPEG (~100 KB) asked for as a 600x600 PNG (~1 MiB,
    // incompressible): on a nearly full disk the upload fits and its output does not.
    const std::string small_source = jpeg_of(noisy(600, 600, 7, 128), 40);
    const std::string query = "?sizes=600&format=png";

    // 0. A broken image fails for good and keeps its upload: it is retried on the full disk below.
    std::string broken_source = small_source.substr(0, small_source.size() / 3);
    auto broken = upload(port, {{"file", "broken.jpg", "image/jpeg", broken_source}});
    REQUIRE(broken.status == 202);
    const std::string broken_id = str(parse_object(broken.body).at("id"));
    CHECK(str(parse_object(wait_for_final(port, broken_id, 60s)).at("state")) == "failed");

    // 1. A thumbnail that cannot be written on a full disk: the job must wait for a retry, not fail.
    const std::uintmax_t slack = small_source.size() + 512 * 1024;
    REQUIRE(available() > slack + 1024 * 1024);
    const fs::path ballast = inside / "ballast";
    write_ballast(ballast, (available() - slack) / 4096 * 4096);
    INFO("free after the ballast: " << available() << " bytes; the upload is " << small_source.size());
    auto big = upload(port, {{"file", "noise.jpg", "image/jpeg", small_source}}, {}, query);
    REQUIRE(big.status == 202);
    const std::string big_id = str(parse_object(big.body).at("id"));
    ids.push_back(big_id);
    json::object big_job;
    {
        const auto deadline = steady::now() + (sanitized ? 60s : 30s);
        for (;;) {
            big_job = parse_object(http_request(port, "GET", "/api/v1/jobs/" + big_id).body);
            const bool tried = !big_job.at("error").is_null() || is_final_state(str(big_job.at("state")));
            if (tried || steady::now() >= deadline) break;
            std::this_thread::sleep_for(20ms);  // polling a process: the deadline bounds a failure only
        }
    }
    INFO("the job after its first attempt on a full disk: " << json::serialize(big_job));
    CHECK(error_code_of(json::serialize(big_job)) == "storage_full");
    CHECK((str(big_job.at("state")) == "queued" || str(big_job.at("state")) == "processing"));
    // A failed write leaves nothing behind: no output, no temp file.
    CHECK(entries(data / "thumbs" / big_id).empty());

    // 2. Fill what is left with uploads until the service says 507. Their outputs cannot be written
    //    either, so they wait with their uploads kept, and the disk only fills.
    const std::string& filler = small_source;
    http_reply refused;
    int fill_accepted = 0;
    for (int i = 0; i < 200; ++i) {
        refused = upload(port, {{"file", numbered("fill", i, ".jpg"), "image/jpeg", filler}}, {}, query);
        if (refused.status != 202) break;
        ids.push_back(str(parse_object(refused.body).at("id")));
        ++fill_accepted;
    }
    INFO("filler " << filler.size() << " bytes, " << fill_accepted << " accepted before the refusal; free now "
                   << available());
    INFO("the server printed:\n" << tail(server.output(), 6000));
    // Whichever write meets the full disk first (the upload's file, or the job's row), the answer
    // is 507 storage_full.
    INFO("the first refusal: " << refused.status << " " << refused.body);
    REQUIRE(refused.status != 202);
    CHECK(refused.status == 507);
    CHECK(error_code_of(refused.body) == "storage_full");
    // An upload larger than the space left meets it while its file is being received.
    const std::string larger = jpeg_of(noisy(1000, 1000, 8, 128), 40);
    REQUIRE(larger.size() > available());
    auto refused_file = upload(port, {{"file", "larger.jpg", "image/jpeg", larger}}, {}, query);
    INFO("an upload larger than the space left: " << refused_file.status << " " << refused_file.body);
    if (refused_file.status == 202) ids.push_back(str(parse_object(refused_file.body).at("id")));
    CHECK(refused_file.status == 507);
    CHECK(refused_file.headers["content-type"].find("application/json") != std::string::npos);
    CHECK(error_code_of(refused_file.body) == "storage_full");
    std::string message = error_message_of(refused_file.body);
    std::transform(message.begin(), message.end(), message.begin(), [](unsigned char c) { return std::tolower(c); });
    CHECK((message.find("space") != std::string::npos || message.find("full") != std::string::npos));
    // Nothing of the refused upload remains: no partial file, no upload without its job.
    CHECK(entries(data / "tmp").empty());
    std::set<std::string> known(ids.begin(), ids.end());
    known.insert(broken_id);  // failed for good, its upload kept for a retry
    for (const auto& f : entries(data / "uploads")) {
        INFO("uploads/" << f);
        CHECK(known.count(f) == 1);
    }
    // Reads still work on a full disk.
    CHECK(http_request(port, "GET", "/healthz").status == 200);
    CHECK(http_request(port, "GET", "/api/v1/jobs/" + big_id).status == 200);
    CHECK(http_request(port, "GET", "/api/v1/jobs?limit=5").status == 200);

    // 2b. The disk to the very last byte: now the jobs' own bookkeeping (SQLite's log) cannot grow
    //     either when a retry comes due. That must not strand a job: wait until some waiting job
    //     has been tried again on the brim-full disk (its row changed) or the service reports a
    //     failed write, then give the space back.
    const fs::path brim = inside / "brim";
    {
        std::ofstream out(brim, std::ios::binary);
        const std::string chunk(4096, '\x5a');
        while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && out.flush()) {
        }
    }
    INFO("free at the brim: " << available());
    auto rows = [&] {
        std::map<std::string, std::string> r;
        for (const auto& j : list_jobs(port))
            r[str(j.at("id"))] = str(j.at("state")) + "/" + json::serialize(j.at("attempts")) + "/" +
                                 str(j.at("updated_at"));
        return r;
    };
    const auto rows_at_brim = rows();
    const auto log_at_brim = server.output().size();
    bool touched = false;
    {
        const auto deadline = steady::now() + (sanitized ? 60s : 30s);
        while (!touched && steady::now() < deadline) {
            const auto log = server.output();
            touched = rows() != rows_at_brim || log.find("level=error", log_at_brim) != std::string::npos ||
                      log.find("level=warn", log_at_brim) != std::string::npos;
            if (!touched) std::this_thread::sleep_for(50ms);  // polling a process: the deadline bounds a failure only
        }
    }
    CHECK(touched);
    CHECK(http_request(port, "GET", "/healthz").status == 200);
    // How many warnings and errors the service logged at the brim (a figure, not a verdict).
    int complaints_at_brim = 0;
    {
        const std::string text = server.output().substr(log_at_brim);
        for (const char* level : {"level=warn", "level=error"})
            for (auto pos = text.find(level); pos != std::string::npos; pos = text.find(level, pos + 1))
                ++complaints_at_brim;
    }

    // 2c. DELETE and retry on the brim-full disk are refused as a full disk (507), never a 500.
    //     Once the store itself has met the full disk (it said so in the log), they must be 507.
    const bool store_full = server.output().find("the disk is full", log_at_brim) != std::string::npos;
    const std::string doomed = ids.back();  // a filler, waiting for its retry
    auto cancel_at_brim = http_request(port, "DELETE", "/api/v1/jobs/" + doomed);
    INFO("DELETE on the full disk: " << cancel_at_brim.status << " " << cancel_at_brim.body);
    CHECK((cancel_at_brim.status == 507 || cancel_at_brim.status == 200));
    if (store_full) CHECK(cancel_at_brim.status == 507);
    if (cancel_at_brim.status == 507) CHECK(error_code_of(cancel_at_brim.body) == "storage_full");
    if (cancel_at_brim.status == 200) ids.pop_back();  // cancelled as asked: it will not succeed
    auto retry_at_brim = http_request(port, "POST", "/api/v1/jobs/" + broken_id + "/retry");
    INFO("retry on the full disk: " << retry_at_brim.status << " " << retry_at_brim.body);
    CHECK((retry_at_brim.status == 507 || retry_at_brim.status == 202));
    if (store_full) CHECK(retry_at_brim.status == 507);
    if (retry_at_brim.status == 507) CHECK(error_code_of(retry_at_brim.body) == "storage_full");
    if (!store_full) WARN("the store never met the full disk at the brim: DELETE and retry were not refused");

    // 3. Space comes back: no restart, no operator. Uploads are accepted and every job finishes,
    //    the one that met the full disk too.
    fs::remove(brim);
    fs::remove(ballast);
    auto after = upload(port, {{"file", "after.jpg", "image/jpeg", filler}}, {}, query);
    INFO("upload after freeing space: " << after.status << " " << after.body);
    REQUIRE(after.status == 202);
    ids.push_back(str(parse_object(after.body).at("id")));
    auto states = wait_all_final(port, ids, sanitized ? 150s : 60s);
    INFO("the server printed:\n" << tail(server.output(), 6000));
    INFO("missing: " << first_lines(states.missing) << "unfinished: " << first_lines(states.unfinished));
    CHECK(states.missing.empty());
    CHECK(states.unfinished.empty());
    output_check files;
    std::vector<std::string> not_succeeded;
    for (const auto& [id, j] : states.jobs) {
        if (str(j.at("state")) == "succeeded")
            check_outputs(data, j, files, {{600, 600}});
        else
            not_succeeded.push_back(id + " " + json::serialize(j));
    }
    INFO("not succeeded:\n" << first_lines(not_succeeded) << "output problems:\n" << first_lines(files.problems));
    CHECK(not_succeeded.empty());
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    const auto& done_big = states.jobs[big_id];
    INFO("the job that met the full disk: " << json::serialize(done_big));
    CHECK(str(done_big.at("state")) == "succeeded");
    CHECK(done_big.at("attempts").to_number<std::int64_t>() >= 2);
    CHECK(done_big.at("outputs").as_array().size() == 1);
    CHECK(entries(data / "tmp").empty());
    std::printf("disk full: filler_accepted=%d first_refusal=%d larger_upload=%d complaints_logged_at_brim=%d "
                "big_job_attempts=%lld jobs=%zu\n",
                fill_accepted, refused.status, refused_file.status, complaints_at_brim,
                static_cast<long long>(done_big.at("attempts").to_number<std::int64_t>()), ids.size());
    std::fflush(stdout);
}

TEST_CASE("durability: a read-only data directory gets 507 and the service recovers by itself", "[durability][disk]") {
    temp_dir dir;
    const fs::path mnt = dir.path() / "mnt";
    fs::create_directories(mnt);
    {
        auto probe = tmpfs_prefix(mnt, "1m");
        probe.insert(probe.end(), {"true"});
        if (run_quiet(probe) != 0 || run_quiet({"nsenter", "--version"}) != 0) {
            WARN("SKIPPED: cannot mount a private tmpfs or nsenter is missing; the read-only test did not run");
            return;
        }
    }
    launch_options opts;
    opts.prefix = tmpfs_prefix(mnt, "16m");
    opts.drain_output = true;
    server_process server(mnt / "data", {"--workers", "1"}, opts);
    const auto p = server.port();
    // Makes the upload area read-only from inside the service's namespaces: a read-only bind mount
    // over data/tmp (remounting the whole tmpfs read-only is refused while SQLite holds files open
    // for writing). Unmounting it gives the writable directory back.
    const std::string tmp_dir = (mnt / "data" / "tmp").string();
    auto in_ns = [&](std::string script) {
        return run_quiet({"nsenter", "-t", std::to_string(server.pid()), "-U", "-m", "--preserve-credentials", "sh",
                          "-c", script, tmp_dir});
    };
    auto make_read_only = [&] { return in_ns("mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\""); };
    auto make_writable = [&] { return in_ns("umount \"$0\""); };
    const fs::path data = fs::path("/proc") / std::to_string(server.pid()) / "root" / mnt.relative_path() / "data";
    const auto img = jpeg_of(noisy(200, 150, 7, 40), 85);

    REQUIRE(make_read_only() == 0);
    auto refused = upload(p, {{"file", "a.jpg", "image/jpeg", img}});
    INFO(refused.body);
    CHECK(refused.status == 507);
    CHECK(error_code_of(refused.body) == "storage_readonly");
    CHECK_THAT(error_message_of(refused.body), Catch::Contains("Read-only"));
    CHECK(entries(data / "uploads").empty());
    CHECK(http_request(p, "GET", "/healthz").status == 200);
    auto not_ready = http_request(p, "GET", "/readyz");
    CHECK(not_ready.status == 503);  // a load balancer stops sending uploads here
    CHECK_THAT(not_ready.body, Catch::Contains("storage_readonly"));
    CHECK(http_request(p, "GET", "/api/v1/jobs").status == 200);

    REQUIRE(make_writable() == 0);  // the operator fixes the mount: no restart needed
    CHECK(http_request(p, "GET", "/readyz").status == 200);
    auto ok = upload(p, {{"file", "a.jpg", "image/jpeg", img}});
    REQUIRE(ok.status == 202);
    const auto id = str(parse_object(ok.body).at("id"));
    CHECK(str(parse_object(wait_for_final(p, id, 60s)).at("state")) == "succeeded");
}
