// The memory budget (src/worker/memory_budget.cpp), the memory limit it defaults from
// (src/config/memory_limit.cpp) and the --max-memory flag: pure logic, no processes.
#include <catch2/catch.hpp>

#include "quickthumb/config.hpp"
#include "quickthumb/memory_budget.hpp"
#include "quickthumb/memory_limit.hpp"
#include "support/catch_result.hpp"
#include "support/run_for.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <map>
#include <thread>

using namespace quickthumb;
namespace asio = boost::asio;

namespace {

constexpr std::uint64_t mib = 1 << 20;

// Runs async_reserve in a coroutine of its own; `granted` tells when it got its memory.
struct waiter {
    memory_budget::ticket ticket;
    std::optional<result<memory_budget::reservation>> outcome;
    bool done() const { return outcome.has_value(); }
    bool granted() const { return outcome && outcome->has_value(); }
};

void start_wait(asio::io_context& io, memory_budget& b, std::uint64_t bytes, waiter& w) {
    asio::co_spawn(io, [&b, bytes, &w]() -> asio::awaitable<void> { w.outcome = co_await b.async_reserve(bytes, w.ticket); },
                   asio::detached);
}

// Runs the io_context until nothing is ready to run (no timers: a wait that is not granted stays).
void settle(asio::io_context& io) {
    io.restart();
    io.poll();
}

}  // namespace

TEST_CASE("memory budget: two jobs of 60% each run one after the other", "[worker][budget]") {
    asio::io_context io;
    memory_budget budget(100 * mib);
    waiter first, second;
    start_wait(io, budget, 60 * mib, first);
    start_wait(io, budget, 60 * mib, second);
    settle(io);
    REQUIRE(first.granted());
    CHECK_FALSE(second.done());
    CHECK(budget.snapshot().reserved == 60 * mib);
    CHECK(budget.snapshot().waiting == 1);
    // The first finishes: the second gets its memory.
    first.outcome->value().release();
    settle(io);
    REQUIRE(second.granted());
    CHECK(budget.snapshot().reserved == 60 * mib);
    CHECK(budget.snapshot().waiting == 0);
    CHECK(budget.snapshot().waited == 1);
    second.outcome = std::nullopt;  // the reservation goes back with it
    CHECK(budget.snapshot().reserved == 0);
}

TEST_CASE("memory budget: first come, first served - a large head is not overtaken", "[worker][budget]") {
    asio::io_context io;
    memory_budget budget(100 * mib);
    waiter a, big, small;
    start_wait(io, budget, 50 * mib, a);
    settle(io);
    start_wait(io, budget, 80 * mib, big);   // does not fit beside a
    settle(io);
    start_wait(io, budget, 10 * mib, small);  // would fit, but big came first
    settle(io);
    REQUIRE(a.granted());
    CHECK_FALSE(big.done());
    CHECK_FALSE(small.done());
    a.outcome = std::nullopt;
    settle(io);
    REQUIRE(big.granted());
    REQUIRE(small.granted());  // 80 + 10 fit together
    CHECK(budget.snapshot().reserved == 90 * mib);
}

TEST_CASE("memory budget: a cancelled wait ends as cancelled and lets the next one through", "[worker][budget]") {
    asio::io_context io;
    memory_budget budget(100 * mib);
    waiter a, b, c;
    start_wait(io, budget, 70 * mib, a);
    start_wait(io, budget, 60 * mib, b);
    start_wait(io, budget, 20 * mib, c);
    settle(io);
    REQUIRE(a.granted());
    CHECK_FALSE(b.done());
    CHECK_FALSE(c.done());
    budget.cancel(b.ticket);  // as a DELETE does, from another thread in the service
    settle(io);
    REQUIRE(b.done());
    CHECK(b.outcome->error().code == errc::cancelled);
    REQUIRE(c.granted());  // b held it back; 70 + 20 fit
    SECTION("a ticket cancelled before the wait begins is cancelled at once") {
        waiter d;
        budget.cancel(d.ticket);
        start_wait(io, budget, 1, d);
        settle(io);
        REQUIRE(d.done());
        CHECK(d.outcome->error().code == errc::cancelled);
    }
    SECTION("cancel_all (the shutdown) ends every wait, and every later one") {
        waiter e, f;
        start_wait(io, budget, 50 * mib, e);
        settle(io);
        CHECK_FALSE(e.done());
        budget.cancel_all();
        start_wait(io, budget, 1, f);
        settle(io);
        REQUIRE(e.done());
        CHECK(e.outcome->error().code == errc::cancelled);
        REQUIRE(f.done());
        CHECK(f.outcome->error().code == errc::cancelled);
    }
}

TEST_CASE("memory budget: threads that block share it with waiting coroutines", "[worker][budget]") {
    memory_budget budget(10 * mib);
    std::atomic<int> inside{0}, most{0}, done{0};
    // 16 jobs of 4 MiB on 4 threads: never more than two at once.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 4; ++i) {
                auto held = budget.reserve(4 * mib);
                const int now = ++inside;
                int seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {
                }
                std::this_thread::yield();
                --inside;
                ++done;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(done == 16);
    CHECK(most <= 2);
    CHECK(budget.snapshot().reserved == 0);
}

TEST_CASE("memory limit: cgroup v1, the hierarchical limit", "[config][memory]") {
    std::map<std::string, std::string> files = {
        {"/sys/fs/cgroup/memory/box/memory.stat", "cache 0\nrss 0\nhierarchical_memory_limit 536870912\n"},
        {"/sys/fs/cgroup/memory/box/memory.limit_in_bytes", "9223372036854771712\n"}};
    auto read = [&](const std::string& p) -> std::optional<std::string> {
        auto it = files.find(p);
        return it == files.end() ? std::nullopt : std::optional(it->second);
    };
    const std::string cgroup = "9:name=systemd:/\n4:memory:/box\n0::/\n";
    const std::string mountinfo =
        "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n";
    auto l = cgroup_memory_limit(cgroup, mountinfo, read);
    REQUIRE(l);
    CHECK(l->bytes == 512 * mib);
    CHECK(l->source == "cgroup v1 /sys/fs/cgroup/memory/box");
    CHECK(default_memory_budget(*l) == 384 * mib);
    SECTION("without memory.stat: memory.limit_in_bytes; v1's 'unlimited' is no limit") {
        files.erase("/sys/fs/cgroup/memory/box/memory.stat");
        CHECK_FALSE(cgroup_memory_limit(cgroup, mountinfo, read));
        files["/sys/fs/cgroup/memory/box/memory.limit_in_bytes"] = "268435456\n";
        auto m = cgroup_memory_limit(cgroup, mountinfo, read);
        REQUIRE(m);
        CHECK(m->bytes == 256 * mib);
    }
    SECTION("a container's mount of its own sub-tree (no cgroup namespace)") {
        const std::string sub = "30 25 0:26 /box /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        files["/sys/fs/cgroup/memory/memory.stat"] = "hierarchical_memory_limit 134217728\n";
        auto m = cgroup_memory_limit(cgroup, sub, read);
        REQUIRE(m);
        CHECK(m->bytes == 128 * mib);
    }
}

TEST_CASE("memory limit: cgroup v2, the smallest memory.max up the tree", "[config][memory]") {
    std::map<std::string, std::string> files = {{"/sys/fs/cgroup/a/memory.max", "1073741824\n"},
                                                {"/sys/fs/cgroup/a/b/memory.max", "max\n"}};
    auto read = [&](const std::string& p) -> std::optional<std::string> {
        auto it = files.find(p);
        return it == files.end() ? std::nullopt : std::optional(it->second);
    };
    const std::string mountinfo = "25 1 0:24 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
    auto l = cgroup_memory_limit("0::/a/b\n", mountinfo, read);
    REQUIRE(l);
    CHECK(l->bytes == 1024 * mib);
    CHECK(l->source == "cgroup v2 /sys/fs/cgroup/a");
    files["/sys/fs/cgroup/a/memory.max"] = "max\n";
    CHECK_FALSE(cgroup_memory_limit("0::/a/b\n", mountinfo, read));
    CHECK_FALSE(cgroup_memory_limit("", "", read));
}

TEST_CASE("memory limit: physical memory from /proc/meminfo, half of it by default", "[config][memory]") {
    CHECK(meminfo_total("MemTotal:       24683728 kB\nMemFree:  100 kB\n") == 24683728ull * 1024);
    CHECK(meminfo_total("nothing\n") == 0);
    const memory_limit machine{1024 * mib, "physical memory", false};
    CHECK(default_memory_budget(machine) == 512 * mib);
    CHECK(resolve_memory_budget(memory_setting{}, machine) == 512 * mib);
    CHECK(resolve_memory_budget(memory_setting{300 * mib, 0}, machine) == 300 * mib);
    CHECK(resolve_memory_budget(memory_setting{0, 0.25}, machine) == 256 * mib);
    // The real machine: something, and the budget below it.
    const auto here = detect_memory_limit();
    CHECK(here.bytes > 0);
    CHECK(default_memory_budget(here) < here.bytes);
}

TEST_CASE("config: --max-memory takes a size or a share of the limit", "[config][memory]") {
    const env_lookup none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    CHECK(parse_command_line({"serve", "--max-memory", "384M"}, none).serve.max_memory == memory_setting{384 * mib, 0});
    CHECK(parse_command_line({"serve", "--max-memory=60%"}, none).serve.max_memory == memory_setting{0, 0.6});
    CHECK(parse_command_line({"serve"}, none).serve.max_memory == memory_setting{});
    const env_lookup env = [](const std::string& n) -> std::optional<std::string> {
        return n == "QUICKTHUMB_MAX_MEMORY" ? std::optional<std::string>("1G") : std::nullopt;
    };
    CHECK(parse_command_line({"serve"}, env).serve.max_memory.bytes == 1024 * mib);
    CHECK(parse_command_line({"thumb", "a.jpg", "--max-memory", "50%"}, none).thumb.max_memory.share == 0.5);
    for (const char* bad : {"0", "1M", "lots", "0%", "101%", "-5%"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_command_line({"serve", "--max-memory", bad}, none), config_error);
    }
    try {
        parse_command_line({"serve", "--max-memory", "lots"}, none);
    } catch (const config_error& e) {
        CHECK(std::string(e.what()).find("--max-memory") != std::string::npos);
        CHECK(std::string(e.what()).find("60%") != std::string::npos);
    }
}
