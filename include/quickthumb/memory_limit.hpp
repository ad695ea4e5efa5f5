#pragma once
// How much memory this process may use: the memory cgroup's limit when there is one (v1 or v2,
// as docker --memory, Kubernetes and systemd set it), else the machine's. The default memory
// budget (--max-memory) is a share of it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace quickthumb {

struct memory_limit {
    std::uint64_t bytes = 0;
    std::string source;  // "cgroup v1 /sys/fs/cgroup/memory/...", "cgroup v2 ...", "physical memory"
    bool cgroup = false;
};

// Reads a file whole; nullopt when it cannot.
using file_reader = std::function<std::optional<std::string>(const std::string& path)>;

// The cgroup limit from the contents of /proc/self/cgroup and /proc/self/mountinfo, reading the
// cgroup's files through `read`; nullopt when no memory cgroup limits this process. v1: the
// memory controller's hierarchical_memory_limit (ancestors included); v2: the smallest memory.max
// from this cgroup up to the mount's root. Limits at or above 2^62 (v1's "unlimited") are none.
std::optional<memory_limit> cgroup_memory_limit(std::string_view proc_self_cgroup, std::string_view mountinfo,
                                                const file_reader& read);

// MemTotal from the contents of /proc/meminfo, in bytes (0 when absent).
std::uint64_t meminfo_total(std::string_view meminfo);

// This process's limit: its cgroup's, else physical memory (from the real /proc files).
memory_limit detect_memory_limit();

// The default budget: 3/4 of a cgroup limit (the rest is the process itself, its connections and
// the page cache of its files); half of a machine's memory, which other programs share.
std::uint64_t default_memory_budget(const memory_limit& limit);

struct memory_setting;  // config.hpp

// What --max-memory comes to: its size, its share of the limit, or the default share.
std::uint64_t resolve_memory_budget(const memory_setting& setting, const memory_limit& limit);

}  // namespace quickthumb
