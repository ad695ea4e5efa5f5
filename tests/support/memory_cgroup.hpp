#pragma once
// A memory cgroup of the test's own, with a limit, to run the real binary in as a small VPS or a
// `docker run --memory` container would: v1 (the memory controller's hierarchy) or v2 (a unified
// hierarchy whose root delegates the memory controller). Needs root; removed on destruction (once
// its processes have exited: declare it before the server_process that runs in it).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qt_test {

class memory_cgroup {
public:
    // nullopt, with the reason in `why`, where no memory cgroup can be made here.
    static std::optional<memory_cgroup> create(std::uint64_t limit_bytes, std::string& why);
    memory_cgroup(memory_cgroup&& o) noexcept : dir_(std::move(o.dir_)), v2_(o.v2_) { o.dir_.clear(); }
    memory_cgroup(const memory_cgroup&) = delete;
    ~memory_cgroup();

    // A launch_options::prefix that moves the process into this cgroup before it execs.
    std::vector<std::string> prefix() const;
    // How many processes the kernel's OOM killer killed in it.
    std::uint64_t oom_kills() const;
    const std::filesystem::path& dir() const { return dir_; }
    bool v2() const { return v2_; }

private:
    memory_cgroup(std::filesystem::path dir, bool v2) : dir_(std::move(dir)), v2_(v2) {}
    std::filesystem::path dir_;
    bool v2_ = false;
};

}  // namespace qt_test
