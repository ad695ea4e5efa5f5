#include "quickthumb/data_dir_lock.hpp"

#include "quickthumb/config.hpp"
#include "quickthumb/file_io.hpp"
#include "quickthumb/job.hpp"

#include <fstream>

#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace quickthumb {

data_dir_lock::data_dir_lock(const std::filesystem::path& dir) : dir_(dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw config_error("cannot create the data directory " + dir.string() + ": " + ec.message());
    const auto path = dir / "quickthumb.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw config_error("cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[32] = {};
        const auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
        ::close(fd_);
        fd_ = -1;
        if (err == EWOULDBLOCK)
            throw config_error("the data directory " + dir.string() + " is in use by another quickthumb process" +
                               (holder.empty() ? std::string() : " (pid " + holder + ")") +
                               ": one process per data directory (give each instance its own --data; several "
                               "instances share jobs with --store redis)");
        throw config_error("cannot lock " + path.string() + ": " + std::strerror(err));
    }
    // The holder's pid, for the message a second process prints.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

std::string data_dir_lock::instance_name() const {
    const auto path = dir_ / "instance";
    if (std::ifstream in(path); in) {
        std::string name;
        std::getline(in, name);
        if (!name.empty()) return name;
    }
    // Held under the lock, so no other process races to make it.
    const std::string name = "qt-" + new_job_id().substr(0, 12);
    const std::string line = name + "\n";
    if (auto w = write_file_atomically(path, {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()},
                                       durability::fsync);
        !w)
        throw config_error("cannot write " + path.string() + ": " + w.error().message);
    return name;
}

data_dir_lock::~data_dir_lock() {
    if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

}  // namespace quickthumb
