#pragma once
// One process per data directory: the SQLite store, the upload files and the start-up recovery
// all assume they are alone there (a second process would requeue the first one's running jobs
// and remove the files it is writing). The lock is an flock on `<dir>/quickthumb.lock`, so the
// kernel drops it when the holder exits, SIGKILL included: a crash never leaves a stale lock.
#include <filesystem>
#include <string>

namespace quickthumb {

class data_dir_lock {
public:
    // Creates the directory if needed and takes the lock. Throws config_error when another process
    // holds it, saying which (its pid, written in the file) and what to do; or when the file
    // cannot be made.
    explicit data_dir_lock(const std::filesystem::path& dir);
    ~data_dir_lock();
    data_dir_lock(const data_dir_lock&) = delete;
    data_dir_lock& operator=(const data_dir_lock&) = delete;

    // This instance's name, kept in `<dir>/instance` (made on first use), so that a restart on the
    // same directory is the same instance to the others (its consumer name on the Redis store).
    std::string instance_name() const;

private:
    std::filesystem::path dir_;
    int fd_ = -1;
};

}  // namespace quickthumb
