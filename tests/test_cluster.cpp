// Several instances as one service (--store redis, one Redis, one bucket), black-box: any
// instance answers for any job and streams every job's events; a dead instance's jobs are run by
// the others; Redis killed and restarted on its append-only file loses no accepted job; one
// Idempotency-Key sent to two instances at once makes one set of jobs; a DELETE reaches the
// instance running the job.
#include "support/cluster.hpp"
#include "support/durability.hpp"
#include "support/eventually.hpp"
#include "support/json.hpp"
#include "support/sse_client.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <set>
#include <thread>

using namespace qt_test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

#define QT_REQUIRE_CLUSTER()          \
    do {                              \
        QT_REQUIRE_REDIS_SERVER();    \
        QT_REQUIRE_S3_SERVER();       \
    } while (false)

std::string upload_one(unsigned short port, const std::string& bytes, const std::map<std::string, std::string>& headers = {},
                       const std::string& query = {}) {
    auto r = http_request(port, "POST", "/api/v1/jobs" + (query.empty() ? "" : "?" + query), bytes, [&] {
        auto h = headers;
        h["Content-Type"] = "image/jpeg";
        return h;
    }());
    REQUIRE(r.status == 202);
    return str(parse_object(r.body).at("id"));
}

json::object get_job(unsigned short port, const std::string& id) {
    auto r = http_request(port, "GET", "/api/v1/jobs/" + id);
    REQUIRE(r.status == 200);
    return parse_object(r.body);
}

}  // namespace

TEST_CASE("cluster: any instance answers for any job, lists every job and streams every job's events",
          "[cluster]") {
    QT_REQUIRE_CLUSTER();
    temp_dir dir;
    cluster c(dir.path(), 3, {"--workers", "1"});
    // C's event stream, open before anything happens.
    sse_client on_c(c.port(2), "/api/v1/events");
    REQUIRE(on_c.read_until([](const std::string& t) { return t.find("retry: ") != std::string::npos; }, 10s));

    const std::string a_job = upload_one(c.port(0), synthetic_jpeg(800, 600));
    const std::string c_job = upload_one(c.port(2), synthetic_jpeg(640, 480));
    // B knows A's job at once and sees it finish.
    CHECK(str(get_job(c.port(1), a_job).at("id")) == a_job);
    auto done = parse_object(wait_for_final(c.port(1), a_job, 60s));
    REQUIRE(str(done.at("state")) == "succeeded");
    // C serves its thumbnail from the bucket.
    const auto& out = done.at("outputs").as_array().at(0).as_object();
    auto thumb = http_request(c.port(2), "GET", "/thumbs/" + a_job + "/" + str(out.at("name")));
    REQUIRE(thumb.status == 200);
    CHECK(thumb.body.size() == static_cast<std::size_t>(out.at("bytes").as_int64()));
    // B's list has A's and C's jobs, newest first.
    REQUIRE(str(parse_object(wait_for_final(c.port(1), c_job, 60s)).at("state")) == "succeeded");
    auto listed = list_jobs(c.port(1));
    std::vector<std::string> ids;
    for (const auto& j : listed) ids.push_back(str(j.at("id")));
    CHECK(ids == std::vector<std::string>{c_job, a_job});
    // C's stream told A's job from queued to succeeded, in order, once each.
    REQUIRE(on_c.read_until([&](const std::string& t) {
        auto s = states_of(events_in(t), a_job);
        return !s.empty() && s.back() == "succeeded";
    }, 30s));
    CHECK(states_of(events_in(on_c.text()), a_job) == std::vector<std::string>{"queued", "processing", "succeeded"});
    // The ids are the shared stream's: resuming on A after C's last id repeats nothing.
    const auto evs = events_in(on_c.text());
    REQUIRE(!evs.empty());
    const std::string last = evs.back().id;
    sse_client on_a(c.port(0), "/api/v1/events", "Last-Event-ID: " + last + "\r\n");
    const std::string d_job = upload_one(c.port(0), synthetic_jpeg(320, 240));
    REQUIRE(on_a.read_until([&](const std::string& t) { return !states_of(events_in(t), d_job).empty(); }, 30s));
    for (const auto& e : events_in(on_a.text()))
        if (e.type == "job") CHECK(str(e.data.at("id")) == d_job);  // nothing before the resume point again
    // Readiness names the store and the instance.
    auto ready = parse_object(http_request(c.port(1), "GET", "/readyz").body);
    CHECK(str(ready.at("job_store")) == "redis");
    CHECK(str(ready.at("store")) == "ok");
    CHECK_FALSE(str(ready.at("instance")).empty());
    CHECK(str(ready.at("redis")) == "up");
}

TEST_CASE("cluster: an instance SIGKILLed with running and queued jobs: the others run every accepted job",
          "[cluster][kill]") {
    QT_REQUIRE_CLUSTER();
    temp_dir dir;
    // Only B (1) runs jobs at first, one at a time, slower than they arrive: it holds one running
    // and one waiting when it dies, the rest wait in the stream. A and C get workers after the kill.
    cluster c(dir.path(), 3, {"--redis-claim-idle", "2s"}, {{"--workers", "0"}, {"--workers", "1"}, {"--workers", "0"}});
    std::vector<std::string> ids;
    const std::string big = noise_jpeg(1600, 1200, 7);
    const std::string sizes = "sizes=1500,1400,1300,1200,1100,1000,900,800";  // about half a second of work
    for (int i = 0; i < 16; ++i) ids.push_back(upload_one(c.port(1), big, {}, sizes));
    eventually([&] { return c.node(1).output().find("msg=\"job processing\"") != std::string::npos; }, 30s,
               "B runs some jobs");
    // Uploads go on at C while B dies.
    std::vector<std::string> more;
    int more_refused = 0;
    std::thread uploader([&] {  // no Catch macros off the test's thread
        for (int i = 0; i < 8; ++i) {
            auto r = http_request(c.port(2), "POST", "/api/v1/jobs?" + sizes, big, {{"Content-Type", "image/jpeg"}});
            if (r.status == 202)
                more.push_back(str(parse_object(r.body).at("id")));
            else
                ++more_refused;
        }
    });
    c.node(1).stop(SIGKILL);
    c.restart(0, {"--workers", "2"});
    uploader.join();
    CHECK(more_refused == 0);
    c.restart(2, {"--workers", "2"});
    ids.insert(ids.end(), more.begin(), more.end());
    auto fin = wait_all_final(c.port(0), ids, 180s);
    // B's jobs were claimed and run elsewhere, the one it was running a second time.
    const std::string logs = c.node(0).output() + c.node(2).output();
    CHECK(logs.find("claimed a job from a consumer gone quiet") != std::string::npos);
    int run_twice = 0;
    for (const auto& [id, j] : fin.jobs) run_twice += j.at("attempts").as_int64() == 2 ? 1 : 0;
    CHECK(run_twice >= 1);
    CHECK(fin.missing.empty());
    CHECK(fin.unfinished.empty());
    std::set<std::string> outputs;
    for (const auto& id : ids) {
        const auto it = fin.jobs.find(id);
        if (it == fin.jobs.end()) continue;
        const auto& j = it->second;
        CHECK(str(j.at("state")) == "succeeded");
        // Every listed output is whole, and the bucket holds nothing else for the job.
        std::set<std::string> listed;
        for (const auto& o : j.at("outputs").as_array()) {
            const auto& out = o.as_object();
            listed.insert("thumbs/" + id + "/" + str(out.at("name")));
            auto got = http_request(c.port(2), "GET", "/thumbs/" + id + "/" + str(out.at("name")));
            CHECK(got.status == 200);
            CHECK(got.body.size() == static_cast<std::size_t>(out.at("bytes").as_int64()));
        }
        std::set<std::string> stored;
        for (const auto& k : c.s3.keys())
            if (k.starts_with("thumbs/" + id + "/")) stored.insert(k);
        CHECK(stored == listed);
    }
    // B's entries are gone from the work stream: nothing is left pending for anyone.
    CHECK_FALSE(any_in_state(c.port(0), "queued"));
    CHECK_FALSE(any_in_state(c.port(0), "processing"));
}

TEST_CASE("cluster: Redis SIGKILLed and restarted on its append-only file: every 202 succeeds",
          "[cluster][kill]") {
    QT_REQUIRE_CLUSTER();
    temp_dir dir;
    // A job whose start the outage refused is taken up again once its entry is idle for the
    // claim time: short here, so the test does not wait the default minute.
    cluster c(dir.path(), 2, {"--workers", "1", "--redis-claim-idle", "3s"});
    const std::string img = synthetic_jpeg(640, 480);
    std::vector<std::string> ids;
    int refused = 0;
    for (int i = 0; i < 10; ++i) ids.push_back(upload_one(c.port(i % 2), img));
    c.redis.kill();
    // Down: not ready, and an upload is refused with a reason to come back, never a 202.
    CHECK(http_request(c.port(0), "GET", "/readyz").status == 503);
    for (int i = 0; i < 4; ++i) {
        auto r = http_request(c.port(i % 2), "POST", "/api/v1/jobs", img, {{"Content-Type", "image/jpeg"}});
        if (r.status == 202) {
            ids.push_back(str(parse_object(r.body).at("id")));
        } else {
            CHECK(r.status == 503);
            CHECK(r.headers.contains("retry-after"));
            ++refused;
        }
    }
    CHECK(refused == 4);
    c.redis.start();
    for (int i = 0; i < 10; ++i) ids.push_back(upload_one(c.port(i % 2), img));
    auto fin = wait_all_final(c.port(1), ids, 120s);
    CHECK(fin.missing.empty());
    CHECK(fin.unfinished.empty());
    for (const auto& [id, j] : fin.jobs) CHECK(str(j.at("state")) == "succeeded");
    CHECK(http_request(c.port(0), "GET", "/readyz").status == 200);
}

TEST_CASE("cluster: one Idempotency-Key at two instances at once makes one set of jobs - DELETE reaches the runner",
          "[cluster][idempotency][cancel]") {
    QT_REQUIRE_CLUSTER();
    temp_dir dir;
    // Only B (1) runs jobs, so a job A cancels is running on B.
    cluster c(dir.path(), 2, {"--max-upload", "64M"}, {{"--workers", "0"}, {"--workers", "1"}});
    const std::string img = synthetic_jpeg(320, 240);
    for (int round = 0; round < 5; ++round) {
        const std::string key = "key-" + std::to_string(round);
        std::string first, second;
        std::thread a([&] {
            auto r = http_request(c.port(0), "POST", "/api/v1/jobs", img, {{"Content-Type", "image/jpeg"}, {"Idempotency-Key", key}});
            if (r.status == 202 || r.status == 200) first = str(parse_object(r.body).at("id"));
        });
        std::thread b([&] {
            auto r = http_request(c.port(1), "POST", "/api/v1/jobs", img, {{"Content-Type", "image/jpeg"}, {"Idempotency-Key", key}});
            if (r.status == 202 || r.status == 200) second = str(parse_object(r.body).at("id"));
        });
        a.join();
        b.join();
        CHECK(!first.empty());
        CHECK(first == second);
    }
    CHECK(list_jobs(c.port(0)).size() == 5);

    // A long job on B (eight large outputs of noise: seconds of work, a safe point after each),
    // cancelled through A.
    const std::string slow =
        upload_one(c.port(0), noise_jpeg(2400, 2400), {}, "sizes=2300,2200,2100,2000,1900,1800,1700,1600");
    eventually([&] { return str(get_job(c.port(0), slow).at("state")) == "processing"; }, 60s, "B starts it");
    auto del = http_request(c.port(0), "DELETE", "/api/v1/jobs/" + slow);
    REQUIRE(del.status == 200);  // 409 would mean the job finished first: the image is too small for this machine
    CHECK(str(parse_object(del.body).at("state")) == "cancelled");
    // At its next safe point; or, had it just written its last output, when its success is refused.
    eventually([&] {
        const auto out = c.node(1).output();
        return out.find("job cancelled while running\" job=" + slow) != std::string::npos ||
               out.find("job outcome not recorded") != std::string::npos;
    }, 60s, "B lets the job go");
    CHECK(str(get_job(c.port(1), slow).at("state")) == "cancelled");
    for (const auto& k : c.s3.keys()) CHECK_FALSE(k.starts_with("thumbs/" + slow + "/"));
}
