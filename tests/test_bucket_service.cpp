// The service on a bucket, black-box: thumbnails served from it or redirected to it, the outputs'
// public URL, readiness and metrics naming it, the bucket going away and coming back under load,
// a SIGKILL in the middle of a multipart upload, a large upload's memory, and the start refused
// for a wrong key.
#include "support/eventually.hpp"
#include "support/json.hpp"
#include "support/raw_connection.hpp"
#include "support/run_process.hpp"
#include "support/s3_process.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

using namespace qt_test;
using namespace std::chrono_literals;

namespace {

// A service whose uploads and thumbnails are in `s3`'s bucket.
struct bucket_service {
    bucket_service(const std::filesystem::path& data, const s3_process& s3, std::vector<std::string> extra = {}) {
        auto args = s3.storage_args();
        args.insert(args.end(), extra.begin(), extra.end());
        launch_options o;
        o.env = s3.env();
        server.emplace(data, args, o);
    }
    std::optional<server_process> server;
    unsigned short port() const { return server->port(); }
};

std::string upload_one(unsigned short port, const std::string& bytes, const std::string& query = {}) {
    auto r = upload(port, {{"file", "p.jpg", "image/jpeg", bytes}}, {}, query);
    REQUIRE(r.status == 202);
    return str(parse_object(r.body).at("id"));
}

bool any_key_starts(const std::vector<std::string>& keys, const std::string& prefix) {
    return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.starts_with(prefix); });
}

}  // namespace

TEST_CASE("bucket service: thumbnails from the bucket, a redirect to it, public URLs, readiness and metrics",
          "[bucket][http]") {
    QT_REQUIRE_S3_SERVER();
    temp_dir dir;
    s3_process s3(dir.path() / "s3");
    std::string id;
    {
        bucket_service svc(dir.path() / "data", s3, {"--public-base-url", "https://cdn.example.com/"});
        id = upload_one(svc.port(), synthetic_jpeg(640, 480));
        auto done = parse_object(wait_for_final(svc.port(), id, 60s));
        REQUIRE(str(done.at("state")) == "succeeded");
        const auto& out = done.at("outputs").as_array().at(0).as_object();
        const std::string name = str(out.at("name"));
        CHECK(str(out.at("url")) == "https://cdn.example.com/thumbs/" + id + "/" + name);
        // The objects, and nothing in the data directory but the job store.
        const auto keys = s3.keys();
        CHECK(std::find(keys.begin(), keys.end(), "thumbs/" + id + "/" + name) != keys.end());
        eventually([&] { return !any_key_starts(s3.keys(), "uploads/"); }, 30s,
                   "the upload is removed once its thumbnails are recorded");
        CHECK_FALSE(std::filesystem::exists(dir.path() / "data" / "thumbs"));

        // Served through the service: the bytes, a validator, a 304 for it.
        auto got = http_request(svc.port(), "GET", "/thumbs/" + id + "/" + name);
        REQUIRE(got.status == 200);
        CHECK(got.headers["content-type"] == "image/jpeg");
        CHECK(got.body.size() == static_cast<std::size_t>(out.at("bytes").as_int64()));
        CHECK(got.body.substr(0, 2) == "\xFF\xD8");
        auto again = http_request(svc.port(), "GET", "/thumbs/" + id + "/" + name, {}, {{"If-None-Match", got.headers["etag"]}});
        CHECK(again.status == 304);
        CHECK(http_request(svc.port(), "HEAD", "/thumbs/" + id + "/" + name).headers["content-length"] == std::to_string(got.body.size()));
        CHECK(http_request(svc.port(), "GET", "/thumbs/" + id + "/thumb_1x1.jpg").status == 404);

        auto ready = http_request(svc.port(), "GET", "/readyz");
        CHECK(ready.status == 200);
        auto rj = parse_object(ready.body);
        CHECK(str(rj.at("storage")) == std::string("s3://") + s3_process::bucket);
        CHECK(str(rj.at("disk")) == "ok");
        const auto metrics = http_request(svc.port(), "GET", "/metrics").body;
        CHECK_THAT(metrics, Catch::Contains("quickthumb_storage_requests_total{op=\"PutObject\",outcome=\"ok\"}") &&
                                Catch::Contains("quickthumb_storage_requests_total{op=\"GetObject\",outcome=\"ok\"}") &&
                                Catch::Contains("quickthumb_storage_request_duration_seconds_count{op=\"DeleteObject\"}"));
        CHECK(svc.server->stop(SIGTERM) == 0);
    }
    // --thumb-redirect: a 302 to a presigned URL of the object, which the bucket serves.
    bucket_service svc(dir.path() / "data", s3, {"--thumb-redirect"});
    auto job = parse_object(http_request(svc.port(), "GET", "/api/v1/jobs/" + id).body);
    const std::string name = str(job.at("outputs").as_array().at(0).at("name"));
    CHECK(str(job.at("outputs").as_array().at(0).at("url")) == "/thumbs/" + id + "/" + name);
    auto r = http_request(svc.port(), "GET", "/thumbs/" + id + "/" + name);
    REQUIRE(r.status == 302);
    const std::string location = r.headers["location"];
    REQUIRE(location.starts_with(s3.endpoint() + "/" + s3_process::bucket + "/thumbs/" + id + "/" + name + "?"));
    CHECK_THAT(location, Catch::Contains("X-Amz-Signature="));
    auto fetched = http_request(s3.port(), "GET", location.substr(s3.endpoint().size()), {},
                                {{"Host", "127.0.0.1:" + std::to_string(s3.port())}});
    CHECK(fetched.status == 200);
    CHECK(fetched.body.substr(0, 2) == "\xFF\xD8");
    CHECK(http_request(svc.port(), "GET", "/thumbs/" + id + "/thumb_1x1.jpg").status == 404);
}

TEST_CASE("bucket service: the bucket gone mid-load: uploads get 503, running jobs retry - every 202 finishes whole",
          "[bucket][http][durability]") {
    QT_REQUIRE_S3_SERVER();
    temp_dir dir;
    s3_process s3(dir.path() / "s3");
    bucket_service svc(dir.path() / "data", s3, {"--workers", "1", "--max-attempts", "20", "--max-upload", "64M",
                                                 "--s3-timeout", "2s"});
    const auto p = svc.port();
    // Seconds of work, its outputs written at the end: the bucket goes while it runs.
    const auto running = upload_one(p, noise_jpeg(2400, 2400), "?sizes=2300,2200,2100,2000,1900,1800");
    eventually([&] { return str(parse_object(http_request(p, "GET", "/api/v1/jobs/" + running).body).at("state")) == "processing"; },
               60s, "the job starts");

    // A client uploading all along: before, during and after the outage.
    std::mutex m;
    std::vector<int> statuses;
    std::vector<std::string> accepted;
    std::atomic<bool> stop_loading{false};
    const std::string small = synthetic_jpeg(300, 200);
    std::thread loader([&] {
        while (!stop_loading) {
            int status = -1;
            std::string id;
            try {
                auto r = upload(p, {{"file", "p.jpg", "image/jpeg", small}});
                status = r.status;
                if (status == 202) id = std::string(boost::json::parse(r.body).at("id").as_string());
            } catch (const std::exception&) {
            }
            std::lock_guard lk(m);
            statuses.push_back(status);
            if (!id.empty()) accepted.push_back(id);
        }
    });
    auto accepted_count = [&] {
        std::lock_guard lk(m);
        return accepted.size();
    };
    eventually([&] { return accepted_count() >= 3; }, 60s, "uploads are accepted");
    s3.kill();

    auto refused = upload(p, {{"file", "p.jpg", "image/jpeg", small}});
    CHECK(refused.status == 503);
    CHECK(refused.headers["retry-after"] == "5");
    CHECK_THAT(refused.body, Catch::Contains("storage_unavailable") && Catch::Contains(s3_process::bucket));
    auto ready = http_request(p, "GET", "/readyz");
    CHECK(ready.status == 503);
    CHECK_THAT(ready.body, Catch::Contains("storage_unavailable"));
    // The running job fails its attempt as a passing failure and waits for its retry.
    eventually([&] {
        auto j = parse_object(http_request(p, "GET", "/api/v1/jobs/" + running).body);
        return j.at("attempts").as_int64() >= 1 && str(j.at("state")) == "queued";
    }, 120s, "the running job's attempt fails and it is queued again");
    CHECK(str(parse_object(http_request(p, "GET", "/api/v1/jobs/" + running).body).at("error").at("code")) ==
          "storage_unavailable");

    const auto before_restart = accepted_count();
    s3.start();
    eventually([&] { return http_request(p, "GET", "/readyz").status == 200; }, 30s, "ready again");
    eventually([&] { return accepted_count() >= before_restart + 3; }, 60s, "uploads are accepted again");
    stop_loading = true;
    loader.join();

    // Every answer was a 202 or a 503, never a 500 or a dropped connection.
    CHECK(std::all_of(statuses.begin(), statuses.end(), [](int s) { return s == 202 || s == 503; }));
    CHECK(std::count(statuses.begin(), statuses.end(), 503) >= 1);
    accepted.push_back(running);
    for (const auto& id : accepted) {
        auto done = parse_object(wait_for_final(p, id, 180s));
        CHECK(str(done.at("state")) == "succeeded");
        for (const auto& o : done.at("outputs").as_array()) {
            // Whole: what the bucket serves is what the job recorded.
            auto t = http_request(p, "GET", "/thumbs/" + id + "/" + str(o.at("name")));
            CHECK(t.status == 200);
            CHECK(t.body.size() == static_cast<std::size_t>(o.at("bytes").as_int64()));
        }
    }
}

TEST_CASE("bucket service: SIGKILL in a multipart upload leaves no object, and the restart aborts its parts",
          "[bucket][http][durability]") {
    QT_REQUIRE_S3_SERVER();
    temp_dir dir;
    s3_process s3(dir.path() / "s3");
    std::optional<bucket_service> svc;
    svc.emplace(dir.path() / "data", s3, std::vector<std::string>{"--workers", "0", "--max-upload", "64M", "--s3-part-size", "5M"});
    // A raw JPEG body of 20 MiB, of which 12 MiB are sent: two parts are in the bucket's hands.
    const std::string jpeg = synthetic_jpeg(64, 64);
    std::string body = jpeg + std::string((20 << 20) - jpeg.size(), '\0');
    raw_connection c(svc->port());
    REQUIRE(c.send("POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    REQUIRE(c.send(std::string_view(body).substr(0, 12 << 20), 30s));
    eventually([&] { return !s3.multipart_uploads().empty(); }, 30s, "the multipart upload has begun");
    CHECK(svc->server->stop(SIGKILL) == 128 + SIGKILL);
    svc.reset();

    CHECK_FALSE(any_key_starts(s3.keys(), "uploads/"));  // nothing visible
    CHECK(s3.multipart_uploads().size() == 1);           // the parts are still held
    svc.emplace(dir.path() / "data", s3, std::vector<std::string>{"--workers", "0"});
    CHECK(s3.multipart_uploads().empty());  // swept at start
    CHECK_THAT(svc->server->output(), Catch::Contains("aborted multipart uploads left by an earlier run"));
    auto list = parse_object(http_request(svc->port(), "GET", "/api/v1/jobs").body);
    CHECK(list.at("jobs").as_array().empty());
}

TEST_CASE("bucket service: a 30 MiB upload streams through a bounded memory", "[bucket][http][memory]") {
    QT_REQUIRE_S3_SERVER();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    WARN("SKIPPED: under a sanitizer the binary's memory is the sanitizer's (shadow memory, quarantine)");
    return;
#endif
    temp_dir dir;
    s3_process s3(dir.path() / "s3");
    bucket_service svc(dir.path() / "data", s3, {"--workers", "0", "--max-upload", "64M", "--s3-part-size", "5M"});
    const std::string jpeg = synthetic_jpeg(64, 64);
    // Warm-up (allocator arenas, the client's connections), then the peak so far.
    upload_one(svc.port(), jpeg);
    const long before = proc_status_kib(svc.server->pid(), "VmHWM");
    const std::string big = jpeg + std::string((30 << 20) - jpeg.size(), '\x55');
    auto r = http_request(svc.port(), "POST", "/api/v1/jobs", big, {{"Content-Type", "image/jpeg"}});
    REQUIRE(r.status == 202);
    const long grown = proc_status_kib(svc.server->pid(), "VmHWM") - before;
    // Two 5 MiB parts (one in flight, one filling), the chunk being read and the HTTP and S3
    // buffers; holding the upload whole would be 30 MiB more.
    INFO("peak resident set grew by " << grown << " KiB");
    CHECK(grown < 14 * 1024);
    const auto id = str(parse_object(r.body).at("id"));
    const auto keys = s3.keys();
    CHECK(std::find(keys.begin(), keys.end(), "uploads/" + id) != keys.end());
}

TEST_CASE("bucket service: a wrong secret or a missing bucket stops the start with the reason", "[bucket][cli]") {
    QT_REQUIRE_S3_SERVER();
    temp_dir dir;
    s3_process s3(dir.path() / "s3");
    auto run_with = [&](const std::string& url, const std::string& secret) {
        std::vector<std::string> args{"/usr/bin/env"};
        for (auto [k, v] : s3.env()) args.push_back(k + "=" + (k == "AWS_SECRET_ACCESS_KEY" ? secret : v));
        for (std::string a : {std::string(QT_BINARY_PATH), std::string("serve"), std::string("--port"), std::string("0"),
                              std::string("--data"), (dir.path() / "data").string(), std::string("--storage"), url,
                              std::string("--s3-path-style")})
            args.push_back(a);
        return run_process(args);
    };
    auto wrong = run_with(std::string("s3://") + s3_process::bucket, "wrong");
    CHECK(wrong.status == 2);
    CHECK_THAT(wrong.err, Catch::Contains("SignatureDoesNotMatch") && Catch::Contains("AWS_SECRET_ACCESS_KEY"));
    auto missing = run_with("s3://no-such-bucket", s3_process::secret_key);
    CHECK(missing.status == 2);
    CHECK_THAT(missing.err, Catch::Contains("NoSuchBucket") && Catch::Contains("create it first"));
}
