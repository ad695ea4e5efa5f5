#pragma once
// Who else hears about a job's life: the Redis mirror today, the event stream later. Each hook is
// called after the change is committed to the store, from any thread, and must not block (post
// the work elsewhere). An empty hook is skipped.
#include "quickthumb/job.hpp"

#include <functional>
#include <string>
#include <vector>

namespace quickthumb {

// How a worker's attempt at a job ended (what the attempt hook reports).
enum class attempt_end { succeeded, failed, retried };

struct job_hooks {
    // New jobs were committed (an upload's 202 is on its way).
    std::function<void(const std::vector<std::string>& ids)> accepted;
    // A job reached a final state: succeeded, failed or cancelled.
    std::function<void(const std::string& id, job_state state)> finished;
    // A job went back to queued (a transient failure waiting for its retry, or an explicit retry).
    std::function<void(const std::string& id)> requeued;
    // Any change a person watching the job would see (state, progress, attempts, outputs, error),
    // with the job as it is after it: what the live event stream publishes.
    std::function<void(const job& now)> changed;
    // A worker took the job: it is processing now, as store::start returned it.
    std::function<void(const job& now)> started;
    // An attempt's outcome was committed: how it ended and how long making the thumbnails took.
    // (Attempts stopped by a DELETE or a shutdown are not reported: they have no outcome.)
    std::function<void(const job& j, attempt_end end, double seconds)> attempted;

    void on_accepted(const std::vector<std::string>& ids) const {
        if (accepted) accepted(ids);
    }
    void on_finished(const std::string& id, job_state s) const {
        if (finished) finished(id, s);
    }
    void on_requeued(const std::string& id) const {
        if (requeued) requeued(id);
    }
    void on_changed(const job& now) const {
        if (changed) changed(now);
    }
    void on_started(const job& now) const {
        if (started) started(now);
    }
    void on_attempted(const job& j, attempt_end end, double seconds) const {
        if (attempted) attempted(j, end, seconds);
    }
};

}  // namespace quickthumb
