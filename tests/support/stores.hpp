#pragma once
// The job store the store-interface tests run against (tests/test_store_transitions.cpp,
// test_store_keys.cpp, test_jobs_service.cpp, test_queue.cpp). They use only job_store, so a
// second backend runs the same cases once its factory is chosen here.
#include "quickthumb/job_store.hpp"

#include <filesystem>
#include <memory>

namespace qt_test {

inline std::unique_ptr<quickthumb::job_store> open_store(const std::filesystem::path& path) {
    return quickthumb::open_sqlite_store(path);
}

}  // namespace qt_test
