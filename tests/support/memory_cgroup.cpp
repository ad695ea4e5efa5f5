#include "support/memory_cgroup.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace qt_test {
namespace fs = std::filesystem;
namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool put(const fs::path& p, const std::string& v) {
    std::ofstream out(p);
    out << v;
    out.flush();
    return out.good();
}

// "key N" lines (memory.oom_control, memory.events).
std::uint64_t field(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    std::string k;
    std::uint64_t v = 0;
    while (in >> k >> v)
        if (k == key) return v;
    return 0;
}

}  // namespace

std::optional<memory_cgroup> memory_cgroup::create(std::uint64_t limit, std::string& why) {
    if (::geteuid() != 0) {
        why = "not root (a memory cgroup needs root)";
        return std::nullopt;
    }
    const std::string name = "quickthumb_test_" + std::to_string(::getpid());
    // v1: the memory controller's own hierarchy.
    const fs::path v1 = "/sys/fs/cgroup/memory";
    if (fs::exists(v1 / "memory.limit_in_bytes")) {
        const fs::path dir = v1 / name;
        std::error_code ec;
        fs::create_directory(dir, ec);
        if (!ec && put(dir / "memory.limit_in_bytes", std::to_string(limit))) return memory_cgroup(dir, false);
        why = "cannot make " + dir.string() + ": " + (ec ? ec.message() : "the limit was refused");
        fs::remove(dir, ec);
        return std::nullopt;
    }
    // v2: a unified hierarchy that delegates memory to its children.
    for (const fs::path root : {fs::path("/sys/fs/cgroup"), fs::path("/sys/fs/cgroup/unified")}) {
        if (slurp(root / "cgroup.subtree_control").find("memory") == std::string::npos) continue;
        const fs::path dir = root / name;
        std::error_code ec;
        fs::create_directory(dir, ec);
        if (!ec && put(dir / "memory.max", std::to_string(limit))) {
            put(dir / "memory.swap.max", "0");  // where swap is accounted: none, as on most VPSes
            return memory_cgroup(dir, true);
        }
        fs::remove(dir, ec);
    }
    why = "no memory cgroup controller is available (neither v1 nor a v2 hierarchy delegating memory)";
    return std::nullopt;
}

memory_cgroup::~memory_cgroup() {
    if (dir_.empty()) return;
    // The processes have exited; the kernel may take a moment to let the cgroup go.
    for (int i = 0; i < 100; ++i) {
        std::error_code ec;
        if (fs::remove(dir_, ec) || !fs::exists(dir_)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::vector<std::string> memory_cgroup::prefix() const {
    return {"sh", "-c", "echo $$ > " + (dir_ / "cgroup.procs").string() + " && exec \"$@\"", "sh"};
}

std::uint64_t memory_cgroup::oom_kills() const {
    return v2_ ? field(slurp(dir_ / "memory.events"), "oom_kill") : field(slurp(dir_ / "memory.oom_control"), "oom_kill");
}

}  // namespace qt_test
