#include "quickthumb/memory_limit.hpp"

#include "quickthumb/config.hpp"

#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace quickthumb {
namespace {

constexpr std::uint64_t unlimited = 1ull << 62;

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (std::size_t at = 0;;) {
        const std::size_t end = s.find(sep, at);
        out.push_back(s.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
        if (end == std::string_view::npos) return out;
        at = end + 1;
    }
}

std::vector<std::string_view> lines(std::string_view s) {
    auto out = split(s, '\n');
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
}

std::optional<std::uint64_t> number(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

struct mount {
    std::string root, point;
};

// The mount of a cgroup hierarchy: v2 (`fstype` cgroup2), or the v1 one whose super options name
// the memory controller.
std::optional<mount> find_mount(std::string_view mountinfo, bool v2) {
    for (auto line : lines(mountinfo)) {
        const auto f = split(line, ' ');
        std::size_t dash = 0;
        while (dash < f.size() && f[dash] != "-") ++dash;
        if (dash < 5 || dash + 3 > f.size()) continue;
        const std::string_view fstype = f[dash + 1];
        if (v2 ? fstype != "cgroup2" : fstype != "cgroup") continue;
        if (!v2) {
            bool memory = false;
            for (auto opt : split(f[dash + 3], ',')) memory = memory || opt == "memory";
            if (!memory) continue;
        }
        return mount{std::string(f[3]), std::string(f[4])};
    }
    return std::nullopt;
}

// The directory of cgroup `path` under its mount (a mount of a sub-tree, as in a container
// without a cgroup namespace, has that sub-tree as its root).
std::string cgroup_dir(const mount& m, std::string_view path) {
    std::string_view rel = path;
    if (m.root != "/" && rel.starts_with(m.root)) rel.remove_prefix(m.root.size());
    else if (m.root != "/") rel = "/";
    std::string dir = m.point;
    if (rel != "/") dir += std::string(rel);
    return dir;
}

}  // namespace

std::optional<memory_limit> cgroup_memory_limit(std::string_view proc_self_cgroup, std::string_view mountinfo,
                                                const file_reader& read) {
    std::optional<memory_limit> best;
    auto consider = [&](std::uint64_t bytes, std::string source) {
        if (bytes >= unlimited) return;
        if (!best || bytes < best->bytes) best = memory_limit{bytes, std::move(source), true};
    };
    for (auto line : lines(proc_self_cgroup)) {
        const auto f = split(line, ':');
        if (f.size() < 3) continue;
        const std::string_view path = line.substr(f[0].size() + f[1].size() + 2);
        bool v1_memory = false;
        for (auto c : split(f[1], ',')) v1_memory = v1_memory || c == "memory";
        if (v1_memory) {
            const auto m = find_mount(mountinfo, false);
            if (!m) continue;
            const std::string dir = cgroup_dir(*m, path);
            // hierarchical_memory_limit already takes the ancestors' limits into account.
            std::optional<std::uint64_t> limit;
            if (auto stat = read(dir + "/memory.stat"))
                for (auto l : lines(*stat))
                    if (l.starts_with("hierarchical_memory_limit ")) limit = number(l.substr(26));
            if (!limit)
                if (auto v = read(dir + "/memory.limit_in_bytes")) limit = number(*v);
            if (limit) consider(*limit, "cgroup v1 " + dir);
        } else if (f[0] == "0" && f[1].empty()) {
            const auto m = find_mount(mountinfo, true);
            if (!m) continue;
            // The smallest memory.max from this cgroup up to the mount's root.
            for (std::string dir = cgroup_dir(*m, path); dir.size() >= m->point.size();) {
                if (auto v = read(dir + "/memory.max"))
                    if (auto n = number(*v)) consider(*n, "cgroup v2 " + dir);  // "max" is no limit
                if (dir == m->point) break;
                const auto slash = dir.rfind('/');
                if (slash == std::string::npos || slash < m->point.size()) dir = m->point;
                else dir.resize(slash);
            }
        }
    }
    return best;
}

std::uint64_t meminfo_total(std::string_view meminfo) {
    for (auto l : lines(meminfo)) {
        if (!l.starts_with("MemTotal:")) continue;
        l.remove_prefix(9);
        while (!l.empty() && l.front() == ' ') l.remove_prefix(1);
        const auto space = l.find(' ');
        if (auto kib = number(l.substr(0, space))) return *kib * 1024;
    }
    return 0;
}

memory_limit detect_memory_limit() {
    const file_reader read = [](const std::string& path) -> std::optional<std::string> {
        std::ifstream in(path);
        if (!in) return std::nullopt;
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    const std::uint64_t physical = meminfo_total(read("/proc/meminfo").value_or(""));
    auto cg = cgroup_memory_limit(read("/proc/self/cgroup").value_or(""), read("/proc/self/mountinfo").value_or(""), read);
    if (cg && (physical == 0 || cg->bytes < physical)) return *cg;
    return memory_limit{physical, "physical memory", false};
}

std::uint64_t default_memory_budget(const memory_limit& limit) {
    return limit.cgroup ? limit.bytes / 4 * 3 : limit.bytes / 2;
}

std::uint64_t resolve_memory_budget(const memory_setting& setting, const memory_limit& limit) {
    if (setting.bytes) return setting.bytes;
    if (setting.share > 0) return static_cast<std::uint64_t>(static_cast<double>(limit.bytes) * setting.share);
    return default_memory_budget(limit);
}

}  // namespace quickthumb
