#pragma once
// Prometheus metrics for GET /metrics. Counters and histograms are updated as things happen, from
// any thread; the gauges (backlog, busy workers, memory) are read from their sources when scraped,
// the jobs by state handed in by the scrape. prometheus-cpp stays behind this interface (src/metrics/), so the modules that count
// things do not depend on it.
#include "quickthumb/job.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace quickthumb {

// How a worker's attempt at a job ended.
enum class attempt_end { succeeded, failed, retried };

// The memory budget as the gauges show it (memory_budget::state, without depending on it).
struct memory_gauges {
    std::uint64_t budget = 0, reserved = 0;
    std::size_t waiting = 0;
    std::uint64_t waited = 0;  // a counter: reservations that had to wait
};

// Where the scrape-time gauges come from. An empty source leaves its gauge at 0.
struct metrics_sources {
    std::function<std::int64_t()> backlog;
    std::function<int()> workers_busy;
    std::function<memory_gauges()> memory;
};

class metrics {
public:
    metrics();
    ~metrics();
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

    // Set once, before the service starts taking requests.
    void set_sources(metrics_sources sources);
    // A job change (the jobs service's subscriber): a start is a queue wait observed, an
    // attempt's outcome an attempt observed. Thread-safe.
    void on_change(const job_change& c);

    // One answered HTTP request. `route` must be a route template ("/api/v1/jobs/{id}"), never a
    // raw path, so the number of series stays bounded.
    void observe_request(std::string_view route, int status, double seconds);
    void add_upload_bytes(std::uint64_t n);
    // One object-store request ("PutObject"), its retries included. Thread-safe.
    void observe_storage_request(std::string_view op, bool ok, double seconds);
    // One attempt's processing time, by how it ended.
    void observe_attempt(attempt_end end, double seconds);
    // How long a job waited between becoming due and a worker starting it.
    void observe_queue_wait(double seconds);

    // The Prometheus text exposition (format 0.0.4), with the jobs in each state as the store
    // counted them just before (a state left out shows 0). Reads the sources first; non-blocking.
    std::string render(const std::map<job_state, std::int64_t>& jobs_by_state);

    static constexpr std::string_view content_type = "text/plain; version=0.0.4";

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace quickthumb
