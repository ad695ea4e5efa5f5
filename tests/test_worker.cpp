// The worker's job life, black-box through the real binary: retries with backoff, permanent
// failures, the per-job timeout, cancellation, retry by hand, retention and upload clean-up.
#include "support/eventually.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace qt_test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

json::object get_job(unsigned short port, const std::string& id) {
    auto r = http_request(port, "GET", "/api/v1/jobs/" + id);
    REQUIRE(r.status == 200);
    return parse_object(r.body);
}

std::string upload_one(unsigned short port, const std::string& bytes, const std::string& query = {}) {
    auto r = upload(port, {{"file", "p.jpg", "image/jpeg", bytes}}, {}, query.empty() ? "" : "?" + query);
    REQUIRE(r.status == 202);
    return str(parse_object(r.body).at("id"));
}

}  // namespace

TEST_CASE("worker: a failed write is retried with backoff and then succeeds", "[worker][retry]") {
    temp_dir dir;
    std::string id;
    {
        server_process server(dir.path(), {"--workers", "0"});
        id = upload_one(server.port(), synthetic_jpeg(300, 200));
        CHECK(server.stop(SIGTERM) == 0);
    }
    // A file where the job's thumbnail directory must go: every write fails (ENOTDIR, an I/O error).
    const fs::path blocker = dir.path() / "thumbs" / id;
    std::ofstream(blocker) << "in the way";

    server_process server(dir.path(), {"--workers", "1", "--max-attempts", "3"});
    json::object waiting;
    eventually([&] {
        waiting = get_job(server.port(), id);
        return waiting.at("attempts").as_int64() >= 1 && str(waiting.at("state")) == "queued";
    }, 30s, "the first attempt fails and the job waits for its retry");
    REQUIRE(waiting.at("error").is_object());
    CHECK(str(waiting.at("error").at("code")) == "io_error");
    CHECK(waiting.at("retry_at").is_string());

    fs::remove(blocker);  // the trouble passes
    auto done = parse_object(wait_for_final(server.port(), id, 60s));
    CHECK(str(done.at("state")) == "succeeded");
    CHECK(done.at("attempts").as_int64() >= 2);
    CHECK(done.at("error").is_null());
    CHECK(fs::exists(dir.path() / "thumbs" / id / "thumb_256x171.jpg"));
}

TEST_CASE("worker: transient failures stop at max-attempts and broken images fail at once", "[worker][retry]") {
    temp_dir dir;
    std::string stuck, broken;
    {
        server_process server(dir.path(), {"--workers", "0", "--max-attempts", "2"});
        stuck = upload_one(server.port(), synthetic_jpeg(300, 200));
        auto jpeg = synthetic_jpeg(300, 200);
        // Per job: the option wins over the flag; a bad value is refused.
        const auto once = upload_one(server.port(), jpeg, "max_attempts=1");
        CHECK(get_job(server.port(), once).at("max_attempts").as_int64() == 1);
        CHECK(get_job(server.port(), stuck).at("max_attempts").as_int64() == 2);
        auto bad = upload(server.port(), {{"file", "p.jpg", "image/jpeg", jpeg}}, {}, "?max_attempts=0");
        CHECK(bad.status == 400);
        CHECK_THAT(bad.body, Catch::Contains("max_attempts"));
        broken = upload_one(server.port(), jpeg.substr(0, jpeg.size() / 3));  // truncated
        CHECK(server.stop(SIGTERM) == 0);
    }
    std::ofstream(dir.path() / "thumbs" / stuck) << "in the way for good";
    server_process server(dir.path(), {"--workers", "1"});  // the jobs keep the attempts they were given
    auto s = parse_object(wait_for_final(server.port(), stuck, 60s));
    CHECK(str(s.at("state")) == "failed");
    CHECK(s.at("attempts").as_int64() == 2);
    CHECK(str(s.at("error").at("code")) == "io_error");
    auto b = parse_object(wait_for_final(server.port(), broken, 60s));
    CHECK(str(b.at("state")) == "failed");
    CHECK(b.at("attempts").as_int64() == 1);  // permanent: no second attempt
    CHECK(str(b.at("error").at("code")) == "corrupt_image");
}

TEST_CASE("worker: a job running past --job-timeout is stopped and retried then fails", "[worker][timeout][pipeline]") {
    temp_dir dir;
    // 1 ms: any real decode of a 3000x3000 JPEG passes it before its first safe point.
    server_process server(dir.path(), {"--workers", "1", "--job-timeout", "1ms", "--max-attempts", "2"});
    const auto id = upload_one(server.port(), synthetic_jpeg(3000, 3000, 80));
    auto j = parse_object(wait_for_final(server.port(), id, 60s));
    CHECK(str(j.at("state")) == "failed");
    CHECK(j.at("attempts").as_int64() == 2);
    CHECK(str(j.at("error").at("code")) == "timeout");
    CHECK_THAT(str(j.at("error").at("message")), Catch::Contains("--job-timeout"));
    CHECK_FALSE(stored(dir.path(), "thumbs/" + id));
    CHECK_THAT(server.output(), Catch::Contains("job will be retried") && Catch::Contains("code=timeout"));
}

TEST_CASE("worker: cancel a waiting job then retry it", "[worker][cancel][pipeline]") {
    temp_dir dir;
    std::string id;
    {
        server_process server(dir.path(), {"--workers", "0"});
        const auto p = server.port();
        id = upload_one(p, synthetic_jpeg(300, 200));
        auto c = http_request(p, "DELETE", "/api/v1/jobs/" + id);
        REQUIRE(c.status == 200);
        CHECK(str(parse_object(c.body).at("state")) == "cancelled");
        CHECK(str(get_job(p, id).at("state")) == "cancelled");
        CHECK(str(get_job(p, id).at("error").at("code")) == "cancelled");
        CHECK(http_request(p, "DELETE", "/api/v1/jobs/" + id).status == 200);  // again: no change
        CHECK(http_request(p, "DELETE", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA").status == 404);
        CHECK(http_request(p, "DELETE", "/api/v1/jobs/../../etc").status == 404);
        CHECK(http_request(p, "POST", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/retry").status == 404);
        CHECK(http_request(p, "GET", "/api/v1/jobs/" + id + "/retry").status == 405);
        // The backlog no longer counts it (the 429 limit must not leak).
        auto r = http_request(p, "POST", "/api/v1/jobs/" + id + "/retry");
        REQUIRE(r.status == 202);
        auto j = parse_object(r.body);
        CHECK(str(j.at("state")) == "queued");
        CHECK(j.at("attempts").as_int64() == 0);
        CHECK(j.at("error").is_null());
        CHECK(server.stop(SIGTERM) == 0);
    }
    server_process server(dir.path(), {"--workers", "1"});
    auto done = parse_object(wait_for_final(server.port(), id, 60s));
    CHECK(str(done.at("state")) == "succeeded");
    // A succeeded job can be neither cancelled nor retried.
    auto c = http_request(server.port(), "DELETE", "/api/v1/jobs/" + id);
    CHECK(c.status == 409);
    CHECK_THAT(c.body, Catch::Contains("conflict"));
    CHECK(http_request(server.port(), "POST", "/api/v1/jobs/" + id + "/retry").status == 409);
}

TEST_CASE("worker: cancelling a running job stops it at a safe point and removes its files", "[worker][cancel][pipeline]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "1", "--max-upload", "64M"});
    const auto p = server.port();
    // Eight large outputs of noise: seconds of work, with a safe point after each output.
    const auto id = upload_one(p, noise_jpeg(2400, 2400), "sizes=2300,2200,2100,2000,1900,1800,1700,1600");
    eventually([&] { return str(get_job(p, id).at("state")) == "processing"; }, 60s, "the job starts");
    auto c = http_request(p, "DELETE", "/api/v1/jobs/" + id);
    REQUIRE(c.status == 200);  // 409 would mean the job finished first: the image is too small for this machine
    CHECK(str(parse_object(c.body).at("state")) == "cancelled");
    // At its next safe point; or, had it just written its last output, when its success is refused.
    eventually([&] {
        const auto out = server.output();
        return out.find("job cancelled while running") != std::string::npos ||
               out.find("job outcome not recorded") != std::string::npos;
    }, 60s, "the worker lets the job go");
    CHECK(str(get_job(p, id).at("state")) == "cancelled");
    CHECK(get_job(p, id).at("outputs").as_array().empty());
    CHECK_FALSE(stored(dir.path(), "thumbs/" + id));
    CHECK(stored(dir.path(), "uploads/" + id));  // kept so that a retry can run
    // The worker is free for the next job.
    const auto next = upload_one(p, synthetic_jpeg(300, 200));
    CHECK(str(parse_object(wait_for_final(p, next, 60s)).at("state")) == "succeeded");
}

TEST_CASE("worker: uploads go once thumbnails exist unless --keep-uploads", "[worker][retention][pipeline]") {
    for (bool keep : {false, true}) {
        temp_dir dir;
        std::vector<std::string> args{"--workers", "1"};
        if (keep) args.push_back("--keep-uploads");
        server_process server(dir.path(), args);
        const auto id = upload_one(server.port(), synthetic_jpeg(300, 200));
        CHECK(str(parse_object(wait_for_final(server.port(), id, 60s)).at("state")) == "succeeded");
        if (keep)
            CHECK(stored(dir.path(), "uploads/" + id));
        else  // removed right after the success is recorded
            eventually([&] { return !stored(dir.path(), "uploads/" + id); }, 30s, "the upload is removed");
        CHECK(stored(dir.path(), "thumbs/" + id + "/thumb_256x171.jpg"));
    }
}

TEST_CASE("worker: the retention sweep deletes finished jobs and their files", "[worker][retention][pipeline]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "1", "--retention", "1s", "--keep-uploads"});
    const auto p = server.port();
    const auto id = upload_one(p, synthetic_jpeg(300, 200));
    CHECK(str(parse_object(wait_for_final(p, id, 60s)).at("state")) == "succeeded");
    eventually([&] { return http_request(p, "GET", "/api/v1/jobs/" + id).status == 404; }, 30s,
               "the finished job is swept");
    CHECK_FALSE(stored(dir.path(), "thumbs/" + id));
    CHECK_FALSE(stored(dir.path(), "uploads/" + id));
    CHECK(http_request(p, "GET", "/thumbs/" + id + "/thumb_256x171.jpg").status == 404);
}

TEST_CASE("worker: a job still running when the shutdown grace ends goes back to queued uncounted", "[worker][shutdown]") {
    temp_dir dir;
    std::string id;
    {
        server_process server(dir.path(), {"--workers", "1", "--max-upload", "64M", "--shutdown-grace", "0"});
        const auto p = server.port();
        id = upload_one(p, noise_jpeg(2400, 2400), "sizes=2300,2200,2100,2000,1900,1800,1700,1600");
        eventually([&] { return str(get_job(p, id).at("state")) == "processing"; }, 60s, "the job starts");
        CHECK(server.stop(SIGTERM) == 0);
        // Stopped at a safe point and released, not left `processing` for recovery to count.
        CHECK_THAT(server.output(), Catch::Contains("job stopped by shutdown"));
    }
    server_process server(dir.path(), {"--workers", "1"});
    auto done = parse_object(wait_for_final(server.port(), id, 120s));
    CHECK(str(done.at("state")) == "succeeded");
    CHECK(done.at("attempts").as_int64() == 1);
    CHECK(done.at("outputs").as_array().size() == 8);
}
