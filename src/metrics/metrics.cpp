#include "quickthumb/metrics.hpp"


#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>


#include <array>
#include <mutex>

namespace quickthumb {

namespace {

constexpr std::array all_states{job_state::queued, job_state::processing, job_state::succeeded, job_state::failed,
                                job_state::cancelled};

// Buckets in seconds. Requests are mostly milliseconds (an upload of a large photo, seconds); an
// attempt is a decode and a few encodes; a queue wait runs from nothing to minutes under a backlog.
const prometheus::Histogram::BucketBoundaries request_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                              0.25,  0.5,    1,     2.5,  5,     10};
const prometheus::Histogram::BucketBoundaries attempt_buckets{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                              2.5,  5,     10,   30,  60,   120};
const prometheus::Histogram::BucketBoundaries wait_buckets{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};

std::string_view to_string(attempt_end e) noexcept {
    switch (e) {
        case attempt_end::succeeded: return "succeeded";
        case attempt_end::failed: return "failed";
        case attempt_end::retried: return "retried";
    }
    return "unknown";
}

}  // namespace

struct metrics::impl {
    prometheus::Registry registry;
    prometheus::Family<prometheus::Gauge>& jobs = prometheus::BuildGauge()
                                                      .Name("quickthumb_jobs")
                                                      .Help("Jobs in the store by state")
                                                      .Register(registry);
    prometheus::Family<prometheus::Histogram>& job_duration =
        prometheus::BuildHistogram()
            .Name("quickthumb_job_duration_seconds")
            .Help("Processing time of one attempt at a job, by how it ended (succeeded, failed, retried)")
            .Register(registry);
    prometheus::Family<prometheus::Histogram>& queue_wait =
        prometheus::BuildHistogram()
            .Name("quickthumb_queue_wait_seconds")
            .Help("Time from a job becoming due to a worker starting it")
            .Register(registry);
    prometheus::Gauge& backlog = prometheus::BuildGauge()
                                     .Name("quickthumb_backlog")
                                     .Help("Jobs waiting to be processed (store and channel)")
                                     .Register(registry)
                                     .Add({});
    prometheus::Gauge& workers_busy = prometheus::BuildGauge()
                                          .Name("quickthumb_workers_busy")
                                          .Help("Workers processing a job right now")
                                          .Register(registry)
                                          .Add({});
    prometheus::Gauge& memory_budget = prometheus::BuildGauge()
                                           .Name("quickthumb_memory_budget_bytes")
                                           .Help("The memory budget jobs reserve their estimated peak from (--max-memory)")
                                           .Register(registry)
                                           .Add({});
    prometheus::Gauge& memory_reserved = prometheus::BuildGauge()
                                             .Name("quickthumb_memory_reserved_bytes")
                                             .Help("Memory reserved by the jobs running now")
                                             .Register(registry)
                                             .Add({});
    prometheus::Gauge& memory_waiting = prometheus::BuildGauge()
                                            .Name("quickthumb_jobs_waiting_for_memory")
                                            .Help("Jobs waiting for their memory to be free before they decode")
                                            .Register(registry)
                                            .Add({});
    prometheus::Counter& memory_waits = prometheus::BuildCounter()
                                            .Name("quickthumb_memory_waits_total")
                                            .Help("Jobs that had to wait for memory before they decoded")
                                            .Register(registry)
                                            .Add({});
    double memory_waits_seen = 0;
    prometheus::Family<prometheus::Counter>& requests = prometheus::BuildCounter()
                                                            .Name("quickthumb_http_requests_total")
                                                            .Help("HTTP requests answered, by route template and status")
                                                            .Register(registry);
    prometheus::Family<prometheus::Histogram>& request_duration =
        prometheus::BuildHistogram()
            .Name("quickthumb_http_request_duration_seconds")
            .Help("Time from a request's header to its answer written, by route template")
            .Register(registry);
    prometheus::Counter& upload_bytes = prometheus::BuildCounter()
                                            .Name("quickthumb_upload_bytes_total")
                                            .Help("Bytes of upload bodies received")
                                            .Register(registry)
                                            .Add({});
    prometheus::Family<prometheus::Counter>& storage_requests =
        prometheus::BuildCounter()
            .Name("quickthumb_storage_requests_total")
            .Help("Object-store requests (with their retries), by S3 operation and outcome")
            .Register(registry);
    prometheus::Family<prometheus::Histogram>& storage_duration =
        prometheus::BuildHistogram()
            .Name("quickthumb_storage_request_duration_seconds")
            .Help("Time an object-store request took, retries included, by S3 operation")
            .Register(registry);
    prometheus::Histogram& wait = queue_wait.Add({}, wait_buckets);
    std::array<prometheus::Gauge*, all_states.size()> state_gauges{};
    std::array<prometheus::Histogram*, 3> attempts{};

    std::mutex sources_mutex;
    metrics_sources sources;

    impl() {
        // Every series that is known up front exists from the first scrape, at 0, so a rate()
        // or an alert sees the first job and not only the second.
        for (std::size_t i = 0; i < all_states.size(); ++i)
            state_gauges[i] = &jobs.Add({{"state", std::string(quickthumb::to_string(all_states[i]))}});
        for (auto e : {attempt_end::succeeded, attempt_end::failed, attempt_end::retried})
            attempts[static_cast<std::size_t>(e)] = &job_duration.Add({{"outcome", std::string(to_string(e))}}, attempt_buckets);
    }
};

metrics::metrics() : impl_(std::make_unique<impl>()) {}
metrics::~metrics() = default;

void metrics::set_sources(metrics_sources sources) {
    std::lock_guard lk(impl_->sources_mutex);
    impl_->sources = std::move(sources);
}

void metrics::on_change(const job_change& c) {
    if (!c.stored || !c.previous) return;
    if (*c.previous == job_state::queued && c.now.state == job_state::processing) {
        // start() stamped updated_at; a job became due at its creation, or at run_after when a
        // retry was scheduled. (An explicit retry clears run_after, so it counts from creation.)
        const auto due = std::max(c.now.created_at, c.now.run_after);
        observe_queue_wait(static_cast<double>(std::max<std::int64_t>(0, c.now.updated_at - due)) / 1000.0);
    }
    if (c.attempt_seconds) {
        const auto end = c.now.state == job_state::succeeded ? attempt_end::succeeded
                         : c.now.state == job_state::failed  ? attempt_end::failed
                                                             : attempt_end::retried;
        observe_attempt(end, *c.attempt_seconds);
    }
}

void metrics::observe_request(std::string_view route, int status, double seconds) {
    const std::string r(route);
    impl_->requests.Add({{"route", r}, {"status", std::to_string(status)}}).Increment();
    impl_->request_duration.Add({{"route", r}}, request_buckets).Observe(seconds);
}

void metrics::observe_storage_request(std::string_view op, bool ok, double seconds) {
    const std::string o(op);
    impl_->storage_requests.Add({{"op", o}, {"outcome", ok ? "ok" : "error"}}).Increment();
    impl_->storage_duration.Add({{"op", o}}, request_buckets).Observe(seconds);
}

void metrics::add_upload_bytes(std::uint64_t n) { impl_->upload_bytes.Increment(static_cast<double>(n)); }

void metrics::observe_attempt(attempt_end end, double seconds) {
    impl_->attempts[static_cast<std::size_t>(end)]->Observe(seconds);
}

void metrics::observe_queue_wait(double seconds) { impl_->wait.Observe(seconds); }

std::string metrics::render(const std::map<job_state, std::int64_t>& jobs_by_state) {
    metrics_sources src;
    {
        std::lock_guard lk(impl_->sources_mutex);
        src = impl_->sources;
    }
    for (std::size_t i = 0; i < all_states.size(); ++i) {
        auto it = jobs_by_state.find(all_states[i]);
        impl_->state_gauges[i]->Set(it == jobs_by_state.end() ? 0.0 : static_cast<double>(it->second));
    }
    if (src.backlog) impl_->backlog.Set(static_cast<double>(src.backlog()));
    if (src.workers_busy) impl_->workers_busy.Set(src.workers_busy());
    if (src.memory) {
        const memory_gauges m = src.memory();
        impl_->memory_budget.Set(static_cast<double>(m.budget));
        impl_->memory_reserved.Set(static_cast<double>(m.reserved));
        impl_->memory_waiting.Set(static_cast<double>(m.waiting));
        // The source counts; the counter only goes up by what is new since the last scrape.
        std::lock_guard lk(impl_->sources_mutex);
        if (const double waited = static_cast<double>(m.waited); waited > impl_->memory_waits_seen) {
            impl_->memory_waits.Increment(waited - impl_->memory_waits_seen);
            impl_->memory_waits_seen = waited;
        }
    }
    return prometheus::TextSerializer().Serialize(impl_->registry.Collect());
}

}  // namespace quickthumb
