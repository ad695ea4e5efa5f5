#pragma once
// Jobs for the store, queue, jobs-service and worker tests: a fresh queued job, and a recorder of
// the changes a subscriber hears.
#include "quickthumb/job.hpp"

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace qt_test {

inline quickthumb::job make_job(std::string name = "a.jpg") {
    quickthumb::job j;
    j.id = quickthumb::new_job_id();
    j.created_at = j.updated_at = quickthumb::now_ms();
    j.source.filename = std::move(name);
    j.source.bytes = 10;
    return j;
}

// What one subscriber heard, kept under a lock (subscribers run on the service's strand).
struct heard {
    std::mutex mutex;
    std::vector<quickthumb::job_change> changes;
    void operator()(const quickthumb::job_change& c) {
        std::lock_guard lk(mutex);
        changes.push_back(c);
    }
    std::vector<quickthumb::job_change> copy() {
        std::lock_guard lk(mutex);
        return changes;
    }
    std::size_t size() {
        std::lock_guard lk(mutex);
        return changes.size();
    }
    // The changes of one job, in order.
    std::vector<quickthumb::job_change> of(const std::string& id) {
        std::lock_guard lk(mutex);
        std::vector<quickthumb::job_change> out;
        for (const auto& c : changes)
            if (c.now.id == id) out.push_back(c);
        return out;
    }
};

}  // namespace qt_test
