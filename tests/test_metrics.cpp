// The metrics module alone, and GET /metrics on the real binary.
#include "support/stores.hpp"
#include "support/prometheus_text.hpp"
#include "quickthumb/metrics.hpp"
#include "quickthumb/job_store.hpp"
#include "support/run_for.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include "support/jobs.hpp"

#include <optional>
#include <set>
#include <sstream>

using namespace quickthumb;
using qt_test::make_job;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

using qt_test::sample;
using qt_test::value;

// Every label value in the exposition (what is between the quotes of name="value").
std::vector<std::pair<std::string, std::string>> labels_of(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto open = line.find('{');
        auto close = line.find('}');
        if (open == std::string::npos || close == std::string::npos) continue;
        std::string body = line.substr(open + 1, close - open - 1);
        std::size_t pos = 0;
        while (pos < body.size()) {
            auto eq = body.find("=\"", pos);
            auto end = body.find('"', eq + 2);
            if (eq == std::string::npos || end == std::string::npos) break;
            out.emplace_back(body.substr(pos, eq - pos), body.substr(eq + 2, end - eq - 2));
            pos = end + 1;
            if (pos < body.size() && body[pos] == ',') ++pos;
        }
    }
    return out;
}

const std::vector<std::pair<std::string, std::string>> families{
    {"quickthumb_jobs", "gauge"},
    {"quickthumb_job_duration_seconds", "histogram"},
    {"quickthumb_queue_wait_seconds", "histogram"},
    {"quickthumb_backlog", "gauge"},
    {"quickthumb_workers_busy", "gauge"},
    {"quickthumb_http_requests_total", "counter"},
    {"quickthumb_http_request_duration_seconds", "histogram"},
    {"quickthumb_upload_bytes_total", "counter"},
    {"quickthumb_memory_budget_bytes", "gauge"},
    {"quickthumb_memory_reserved_bytes", "gauge"},
    {"quickthumb_jobs_waiting_for_memory", "gauge"},
    {"quickthumb_memory_waits_total", "counter"},
};

}  // namespace

TEST_CASE("metrics: every family is exposed with its HELP and TYPE lines", "[metrics]") {
    metrics m;
    m.observe_request("/healthz", 200, 0.001);  // a labelled family shows its HELP only once it has a series
    const auto text = m.render({});
    for (const auto& [name, type] : families) {
        INFO(name);
        CHECK(text.find("# HELP " + name + " ") != std::string::npos);
        CHECK(text.find("# TYPE " + name + " " + type + "\n") != std::string::npos);
    }
    // Known series exist from the start, at 0.
    for (auto s : {"queued", "processing", "succeeded", "failed", "cancelled"})
        CHECK(value(text, std::string("quickthumb_jobs{state=\"") + s + "\"}") == 0);
    for (auto o : {"succeeded", "failed", "retried"})
        CHECK(value(text, std::string("quickthumb_job_duration_seconds_count{outcome=\"") + o + "\"}") == 0);
    CHECK(value(text, "quickthumb_upload_bytes_total") == 0);
    CHECK(value(text, "quickthumb_queue_wait_seconds_count") == 0);
    CHECK(std::string(metrics::content_type) == "text/plain; version=0.0.4");
}

TEST_CASE("metrics: counters increase and histograms fill their buckets", "[metrics]") {
    metrics m;
    m.observe_request("/api/v1/jobs", 202, 0.003);
    m.observe_request("/api/v1/jobs", 202, 0.004);
    m.observe_request("/api/v1/jobs", 415, 0.0005);
    m.add_upload_bytes(100);
    m.add_upload_bytes(23);
    m.observe_attempt(attempt_end::succeeded, 0.2);
    m.observe_attempt(attempt_end::retried, 3);
    m.observe_queue_wait(0.07);
    const auto text = m.render({});

    CHECK(value(text, R"(quickthumb_http_requests_total{route="/api/v1/jobs",status="202"})") == 2);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="/api/v1/jobs",status="415"})") == 1);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_count{route="/api/v1/jobs"})") == 3);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_bucket{route="/api/v1/jobs",le="0.001"})") == 1);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_bucket{route="/api/v1/jobs",le="0.0025"})") == 1);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_bucket{route="/api/v1/jobs",le="0.005"})") == 3);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_bucket{route="/api/v1/jobs",le="+Inf"})") == 3);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_sum{route="/api/v1/jobs"})") == Approx(0.0075));
    CHECK(value(text, "quickthumb_upload_bytes_total") == 123);

    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="succeeded"})") == 1);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_bucket{outcome="succeeded",le="0.1"})") == 0);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_bucket{outcome="succeeded",le="0.25"})") == 1);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="retried"})") == 1);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_bucket{outcome="retried",le="2.5"})") == 0);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_bucket{outcome="retried",le="5"})") == 1);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="failed"})") == 0);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="0.05"})") == 0);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="0.1"})") == 1);

    // Counting goes on between scrapes.
    m.observe_request("/api/v1/jobs", 202, 0.003);
    CHECK(value(m.render({}), R"(quickthumb_http_requests_total{route="/api/v1/jobs",status="202"})") == 3);
}

TEST_CASE("metrics: gauges are read from their sources at each scrape", "[metrics]") {
    metrics m;
    std::int64_t backlog = 7;
    int busy = 2;
    memory_gauges memory{400 << 20, 100 << 20, 1, 3};
    m.set_sources(metrics_sources{[&] { return backlog; }, [&] { return busy; }, [&] { return memory; }});
    const std::map<job_state, std::int64_t> counts{{job_state::queued, 5}, {job_state::failed, 1}};
    auto text = m.render(counts);
    CHECK(value(text, R"(quickthumb_jobs{state="queued"})") == 5);
    CHECK(value(text, R"(quickthumb_jobs{state="failed"})") == 1);
    CHECK(value(text, R"(quickthumb_jobs{state="succeeded"})") == 0);  // absent from the counts: 0
    CHECK(value(text, "quickthumb_backlog") == 7);
    CHECK(value(text, "quickthumb_workers_busy") == 2);
    CHECK(value(text, "quickthumb_memory_budget_bytes") == 400 << 20);
    CHECK(value(text, "quickthumb_memory_reserved_bytes") == 100 << 20);
    CHECK(value(text, "quickthumb_jobs_waiting_for_memory") == 1);
    CHECK(value(text, "quickthumb_memory_waits_total") == 3);
    backlog = 0;
    busy = 1;
    memory = {400 << 20, 0, 0, 5};
    text = m.render(counts);
    CHECK(value(text, "quickthumb_backlog") == 0);
    CHECK(value(text, "quickthumb_workers_busy") == 1);
    CHECK(value(text, "quickthumb_memory_reserved_bytes") == 0);
    CHECK(value(text, "quickthumb_jobs_waiting_for_memory") == 0);
    CHECK(value(text, "quickthumb_memory_waits_total") == 5);
}

TEST_CASE("metrics: jobs by state come from one query on the store", "[metrics]") {
    qt_test::temp_dir dir;
    auto s_owner = open_sqlite_store(dir.path() / "q.db");
    job_store& s = *s_owner;
    asio::io_context io;
    std::vector<job> jobs;
    for (int i = 0; i < 4; ++i) jobs.push_back(make_job("f" + std::to_string(i)));
    qt_test::run_for(io, [&]() -> asio::awaitable<void> {
        {
            auto r_ = co_await s.insert(jobs);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(jobs[0].id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.start(jobs[1].id);
            REQUIRE(r_);
        }
        {
            auto r_ = co_await s.cancel(jobs[2].id);
            REQUIRE(r_);
        }
    }(), 10s);
    auto counts = qt_test::read_now(s.count_by_state());
    CHECK(counts.size() == 5);
    CHECK(counts[job_state::queued] == 1);
    CHECK(counts[job_state::processing] == 2);
    CHECK(counts[job_state::cancelled] == 1);
    CHECK(counts[job_state::succeeded] == 0);
    CHECK(counts[job_state::failed] == 0);

    metrics m;
    CHECK(value(m.render(counts), R"(quickthumb_jobs{state="processing"})") == 2);
}

TEST_CASE("metrics: job changes report queue wait and attempts", "[metrics]") {
    metrics m;
    job first;  // created at 10 s, started at 12.5 s: waited 2.5 s
    first.state = job_state::processing;
    first.created_at = 10'000;
    first.updated_at = 12'500;
    m.on_change(job_change{job_state::queued, first});
    job retried = first;  // due again at 60 s (its backoff), started at 60.03 s: waited 0.03 s
    retried.run_after = 60'000;
    retried.updated_at = 60'030;
    m.on_change(job_change{job_state::queued, retried});
    // Progress and a new job are no start; an attempt's outcome carries its duration.
    m.on_change(job_change{job_state::processing, first, false});
    job queued = first;
    queued.state = job_state::queued;
    m.on_change(job_change{std::nullopt, queued});
    job failed = first;
    failed.state = job_state::failed;
    m.on_change(job_change{job_state::processing, failed, true, 0.02});

    const auto text = m.render({});
    CHECK(value(text, "quickthumb_queue_wait_seconds_count") == 2);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="0.01"})") == 0);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="0.05"})") == 1);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="1"})") == 1);
    CHECK(value(text, R"(quickthumb_queue_wait_seconds_bucket{le="5"})") == 2);
    CHECK(value(text, "quickthumb_queue_wait_seconds_sum") == Approx(2.53));
    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="failed"})") == 1);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_bucket{outcome="failed",le="0.025"})") == 1);
}

TEST_CASE("metrics: GET /metrics after three jobs on one worker", "[metrics][http][e2e]") {
    qt_test::temp_dir dir;
    qt_test::server_process server(dir.path(), {"--workers", "1"});
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto r = qt_test::upload(server.port(), {{"file", "p" + std::to_string(i) + ".jpg", "image/jpeg",
                                                  qt_test::synthetic_jpeg(640, 480)}});
        REQUIRE(r.status == 202);
        ids.push_back(std::string(boost::json::parse(r.body).at("id").as_string()));
    }
    std::string thumb_url;
    for (const auto& id : ids) {
        auto done = boost::json::parse(qt_test::wait_for_final(server.port(), id, 60s)).as_object();
        REQUIRE(done.at("state").as_string() == "succeeded");
        thumb_url = std::string(done.at("outputs").as_array().at(0).at("url").as_string());
    }
    REQUIRE(qt_test::http_request(server.port(), "GET", thumb_url).status == 200);
    CHECK(qt_test::http_request(server.port(), "GET", "/api/v1/jobs/" + ids[0] + "/nothing").status == 404);
    CHECK(qt_test::http_request(server.port(), "POST", "/metrics").status == 405);

    // A worker reports an attempt just after its outcome is committed, so a client can see the job
    // succeeded a moment before the metrics do: poll until all three are counted.
    qt_test::http_reply scrape;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        scrape = qt_test::http_request(server.port(), "GET", "/metrics");
        REQUIRE(scrape.status == 200);
        auto n = sample(scrape.body, R"(quickthumb_job_duration_seconds_count{outcome="succeeded"})");
        if ((n && *n >= 3) || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(20ms);
    }
    const auto& text = scrape.body;
    INFO(text);
    CHECK(scrape.headers.at("content-type") == "text/plain; version=0.0.4");
    CHECK(value(text, R"(quickthumb_jobs{state="succeeded"})") == 3);
    CHECK(value(text, R"(quickthumb_jobs{state="queued"})") == 0);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="/api/v1/jobs",status="202"})") >= 3);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="/api/v1/jobs/{id}",status="200"})") >= 3);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="/thumbs/{id}/{file}",status="200"})") == 1);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="other",status="404"})") == 1);
    CHECK(value(text, R"(quickthumb_http_requests_total{route="/metrics",status="405"})") == 1);
    CHECK(value(text, R"(quickthumb_http_request_duration_seconds_count{route="/api/v1/jobs"})") >= 3);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="succeeded"})") == 3);
    CHECK(value(text, R"(quickthumb_job_duration_seconds_count{outcome="failed"})") == 0);
    CHECK(value(text, "quickthumb_queue_wait_seconds_count") == 3);
    CHECK(value(text, "quickthumb_upload_bytes_total") > 3 * 1000);
    CHECK(value(text, "quickthumb_backlog") == 0);
    CHECK(sample(text, "quickthumb_workers_busy"));

    // Label values are from a bounded set: no job id, no raw path.
    for (const auto& id : ids) CHECK(text.find(id) == std::string::npos);
    const std::set<std::string> routes{"/api/v1/jobs", "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/retry",
                                       "/api/v1/events", "/thumbs/{id}/{file}", "/healthz", "/readyz",
                                       "/metrics", "/openapi.json", "static", "other"};
    for (const auto& [name, v] : labels_of(text)) {
        INFO(name << "=" << v);
        if (name == "route") CHECK(routes.count(v) == 1);
        if (name == "status") CHECK((v.size() == 3 && v.find_first_not_of("0123456789") == std::string::npos));
        if (name == "state") CHECK(parse_job_state(v));
        if (name == "outcome") CHECK((v == "succeeded" || v == "failed" || v == "retried"));
        CHECK((name == "route" || name == "status" || name == "state" || name == "outcome" || name == "le"));
    }
}
