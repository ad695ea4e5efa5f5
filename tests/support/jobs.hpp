#pragma once
// A fresh queued job for the store and queue tests: a new id, created now, a small source.
#include "quickthumb/job.hpp"

#include <string>

namespace qt_test {

inline quickthumb::job make_job(std::string name = "a.jpg") {
    quickthumb::job j;
    j.id = quickthumb::new_job_id();
    j.created_at = j.updated_at = quickthumb::now_ms();
    j.source.filename = std::move(name);
    j.source.bytes = 10;
    return j;
}

}  // namespace qt_test
