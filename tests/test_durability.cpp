// Black-box durability tests (issue 4): the real binary, killed under load, starved of disk,
// over its backlog and stopped with work in flight. No accepted job may be lost, finished twice
// or left half-written. Every wait is for a condition, bounded by a deadline that only a failure
// reaches; kill points are chosen by counts of accepted uploads, never by time.
//
// Environment knobs (all optional): QT_DURABILITY_SEED (repeat a run), QT_DURABILITY_KILLS
// (at least 12), QT_DURABILITY_MIN_ACCEPTED (default 300, 200 under ASan).
#include "quickthumb/image.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

using namespace qt_test;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    try {
        return std::stoi(v);
    } catch (const std::exception&) {
        return fallback;
    }
}

// ---- pictures -------------------------------------------------------------------------------

// A gradient with per-pixel noise of +-amplitude (128: nothing but noise, which no codec shrinks).
quickthumb::image::pixels noisy(int w, int h, std::uint32_t seed, int amplitude) {
    auto p = gradient(w, h, 3);
    std::minstd_rand r(seed);
    for (auto& v : p.data) {
        const int n = static_cast<int>(r() % static_cast<unsigned>(2 * amplitude + 1)) - amplitude;
        v = static_cast<std::uint8_t>(std::clamp(static_cast<int>(v) + n, 0, 255));
    }
    return p;
}

std::string as_string(const quickthumb::result<std::vector<std::uint8_t>>& enc) {
    REQUIRE(enc);
    return {enc->begin(), enc->end()};
}

std::string jpeg_of(const quickthumb::image::pixels& p, int quality) {
    return as_string(quickthumb::image::encode_jpeg(p, quality));
}

std::string png_of(const quickthumb::image::pixels& p) { return as_string(quickthumb::image::encode_png(p)); }

// "p7.jpg" (and not "p" + std::to_string(7) + ".jpg", which GCC 12 warns about wrongly).
std::string numbered(std::string_view prefix, long long n, std::string_view suffix) {
    std::string s(prefix);
    s += std::to_string(n);
    s += suffix;
    return s;
}

// ---- JSON and files -------------------------------------------------------------------------

bool is_final_state(const std::string& s) { return s == "succeeded" || s == "failed" || s == "cancelled"; }

std::string error_code_of(const std::string& body) {
    try {
        auto v = json::parse(body);
        return str(v.at("error").at("code"));
    } catch (const std::exception&) {
        return {};
    }
}

std::string error_message_of(const std::string& body) {
    try {
        auto v = json::parse(body);
        return str(v.at("error").at("message"));
    } catch (const std::exception&) {
        return {};
    }
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Names in a directory (none if it does not exist).
std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
    return out;
}

// Every job the service knows, through the paginated list (newest first).
std::vector<json::object> list_jobs(unsigned short port, const std::string& state = {}) {
    std::vector<json::object> out;
    std::string cursor;
    for (int page = 0; page < 100000; ++page) {
        std::string target = "/api/v1/jobs?limit=100";
        if (!state.empty()) target += "&state=" + state;
        if (!cursor.empty()) target += "&cursor=" + cursor;
        auto r = http_request(port, "GET", target);
        REQUIRE(r.status == 200);
        auto body = parse_object(r.body);
        for (const auto& j : body.at("jobs").as_array()) out.push_back(j.as_object());
        if (body.at("next_cursor").is_null()) break;
        cursor = str(body.at("next_cursor"));
    }
    return out;
}

// Whether any job is in `state` (queued, processing).
bool any_in_state(unsigned short port, const std::string& state) {
    auto r = http_request(port, "GET", "/api/v1/jobs?limit=1&state=" + state);
    REQUIRE(r.status == 200);
    return !parse_object(r.body).at("jobs").as_array().empty();
}

// What became of a set of accepted ids, once nothing is left to wait for.
struct final_states {
    std::map<std::string, json::object> jobs;  // id -> its JSON, final
    std::vector<std::string> missing;          // 404: the service does not know the job (lost)
    std::vector<std::string> unfinished;       // still queued/processing at the deadline (stuck)
};

// Waits (bounded) until every id is final. While some are not, it waits for the service to have
// nothing queued or processing, then asks each remaining id again; a 404 is final too (lost).
final_states wait_all_final(unsigned short port, const std::vector<std::string>& ids, steady::duration timeout) {
    const auto deadline = steady::now() + timeout;
    final_states out;
    std::vector<std::string> pending(ids.begin(), ids.end());
    std::map<std::string, json::object> last;
    for (;;) {
        std::vector<std::string> still;
        for (const auto& id : pending) {
            auto r = http_request(port, "GET", "/api/v1/jobs/" + id);
            if (r.status == 404) {
                out.missing.push_back(id);
                continue;
            }
            REQUIRE(r.status == 200);
            auto j = parse_object(r.body);
            if (is_final_state(str(j.at("state"))))
                out.jobs[id] = std::move(j);
            else {
                last[id] = std::move(j);
                still.push_back(id);
            }
        }
        pending = std::move(still);
        if (pending.empty() || steady::now() >= deadline) break;
        // Poll the cheap lists until the service looks idle (or the deadline), then look again.
        while (steady::now() < deadline && (any_in_state(port, "processing") || any_in_state(port, "queued")))
            std::this_thread::sleep_for(20ms);  // polling a process: the deadline bounds a failure only
    }
    for (const auto& id : pending) {
        out.unfinished.push_back(id);
        out.jobs[id] = last[id];
    }
    return out;
}

// The files of one finished job against what its JSON lists.
struct output_check {
    int duplicated = 0;    // outputs listed twice, or files in thumbs/<id>/ the job does not list
    int leftover_temp = 0; // temp files (".tmp", ".part") left in thumbs/<id>/
    int half_written = 0;  // listed files missing, undecodable, or of another size than listed
    std::vector<std::string> problems;
};

bool is_temp_name(const std::string& name) {
    return name.find(".tmp") != std::string::npos || name.find(".part") != std::string::npos ||
           (!name.empty() && name[0] == '.');
}

void check_outputs(const fs::path& data, const json::object& job, output_check& out,
                   const std::vector<std::pair<int, int>>& expected_sizes = {}) {
    const std::string id = str(job.at("id"));
    const fs::path dir = data / "thumbs" / id;
    std::set<std::string> on_disk = entries(dir);
    std::set<std::string> listed;
    std::vector<std::pair<int, int>> sizes;
    for (const auto& o : job.at("outputs").as_array()) {
        const auto& obj = o.as_object();
        const std::string name = str(obj.at("name"));
        const int w = static_cast<int>(obj.at("width").to_number<std::int64_t>());
        const int h = static_cast<int>(obj.at("height").to_number<std::int64_t>());
        const auto bytes = obj.at("bytes").to_number<std::int64_t>();
        sizes.emplace_back(w, h);
        if (!listed.insert(name).second) {
            ++out.duplicated;
            out.problems.push_back(id + ": output " + name + " listed twice");
            continue;
        }
        if (!on_disk.count(name)) {
            ++out.half_written;
            out.problems.push_back(id + ": listed output " + name + " is not on disk");
            continue;
        }
        const std::string file = read_file(dir / name);
        auto hdr = quickthumb::image::read_header(
            std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()));
        if (!hdr || hdr->width != w || hdr->height != h || static_cast<std::int64_t>(file.size()) != bytes) {
            ++out.half_written;
            out.problems.push_back(id + ": " + name + " is " + std::to_string(file.size()) + " bytes, " +
                                   (hdr ? std::to_string(hdr->width) + "x" + std::to_string(hdr->height)
                                        : std::string("undecodable")) +
                                   "; listed " + std::to_string(bytes) + " bytes, " + std::to_string(w) + "x" +
                                   std::to_string(h));
        }
    }
    for (const auto& name : on_disk)
        if (!listed.count(name)) {
            ++(is_temp_name(name) ? out.leftover_temp : out.duplicated);
            out.problems.push_back(id + ": unlisted file thumbs/" + id + "/" + name);
        }
    if (!expected_sizes.empty() && sizes != expected_sizes) {
        std::string got;
        for (auto [w, h] : sizes) got += numbered(" ", w, "x") + std::to_string(h);
        out.problems.push_back(id + ": outputs are" + got);
        ++out.half_written;
    }
}

std::string first_lines(const std::vector<std::string>& v, std::size_t n = 10) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < n; ++i) s += "  " + v[i] + "\n";
    if (v.size() > n) s += "  ... and " + std::to_string(v.size() - n) + " more\n";
    return s;
}

std::string tail(const std::string& s, std::size_t n = 4000) { return s.size() <= n ? s : s.substr(s.size() - n); }

// A keep-alive connection, for requests sent on a connection opened earlier.
class connection {
public:
    explicit connection(unsigned short port) : stream_(io_) {
        stream_.expires_after(30s);
        stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    }
    // Throws when the connection fails or the peer closes it.
    http_reply request(const std::string& method, const std::string& target, const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {}) {
        namespace bhttp = boost::beast::http;
        bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.keep_alive(true);
        for (const auto& [k, v] : headers) req.set(k, v);
        req.body() = body;
        req.prepare_payload();
        stream_.expires_after(30s);
        bhttp::write(stream_, req);
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(64 << 20);
        bhttp::read(stream_, buffer_, parser);
        http_reply out;
        out.status = static_cast<int>(parser.get().result_int());
        for (const auto& f : parser.get()) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            out.headers[name] = std::string(f.value());
        }
        out.body = parser.get().body();
        return out;
    }

private:
    boost::asio::io_context io_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
};

// Runs a command with no output; its exit status (-1 if it cannot start).
int run_quiet(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The wrapper that runs the service in a private mount namespace, on a tmpfs of `size` mounted over
// `dir` (unprivileged, through a user namespace). "$0" is the directory, "$@" the service.
std::vector<std::string> tmpfs_prefix(const fs::path& dir, const std::string& size) {
    return {"unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            "mount -t tmpfs -o size=" + size + " none \"$0\" && exec \"$@\"", dir.string()};
}

void write_ballast(const fs::path& p, std::uintmax_t bytes) {
    std::ofstream out(p, std::ios::binary);
    REQUIRE(out);
    const std::string chunk(1 << 16, '\x5a');
    std::uintmax_t left = bytes;
    while (left > 0 && out) {
        const auto n = std::min<std::uintmax_t>(left, chunk.size());
        out.write(chunk.data(), static_cast<std::streamsize>(n));
        left -= n;
    }
    out.close();
    REQUIRE(fs::file_size(p) == bytes);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("durability: SIGKILL under load loses no accepted job and leaves no half-written output",
          "[durability][kill]") {
    const int min_kills = std::max(12, env_int("QT_DURABILITY_KILLS", 12));
    const int min_accepted = std::max(1, env_int("QT_DURABILITY_MIN_ACCEPTED", sanitized ? 200 : 300));
    const unsigned seed =
        static_cast<unsigned>(env_int("QT_DURABILITY_SEED", static_cast<int>(std::random_device{}() >> 1)));
    std::printf("durability kill test: seed=%u (QT_DURABILITY_SEED repeats it) min_kills=%d min_accepted=%d\n", seed,
                min_kills, min_accepted);
    std::fflush(stdout);
    std::mt19937 rng(seed);

    temp_dir dir;
    const fs::path data = dir.path() / "data";
    const std::vector<std::string> args = {"--workers", "2", "--max-attempts", "10"};
    launch_options opts;
    opts.drain_output = true;

    // 800x600: a PNG is decoded whole (a few ms), a JPEG at a DCT scale; two outputs per job.
    struct picture {
        std::string name, type, bytes;
    };
    std::vector<picture> pictures;
    for (std::uint32_t i = 0; i < 2; ++i) {
        pictures.push_back({numbered("k", i, ".jpg"), "image/jpeg", jpeg_of(noisy(800, 600, i + 1, 24), 90)});
        pictures.push_back({numbered("k", i, ".png"), "image/png", png_of(noisy(800, 600, i + 11, 6))});
    }
    const std::vector<std::pair<int, int>> expected_sizes = {{64, 48}, {128, 96}};

    // Shared with the client threads, under `m`. port 0: no server to talk to (being killed);
    // generation counts the starts, so that a client can tell a kill from a failure of a live server.
    std::mutex m;
    std::condition_variable cv;
    unsigned short port = 0;
    int generation = 0;
    bool done = false;
    std::vector<std::string> accepted;
    int accepted_since_start = 0;
    int connection_errors = 0;
    std::vector<std::string> unexpected;  // any answer but 202, or a failed request, from a live server

    auto client = [&](int k) {
        for (int n = 0;; ++n) {
            unsigned short p = 0;
            int gen = 0;
            {
                std::unique_lock lk(m);
                cv.wait(lk, [&] { return done || port != 0; });
                if (done) return;
                p = port;
                gen = generation;
            }
            const auto& pic = pictures[static_cast<std::size_t>(k + n) % pictures.size()];
            try {
                auto r = upload(p, {{"file", pic.name, pic.type, pic.bytes}}, {}, "?sizes=64,128");
                std::string id;
                if (r.status == 202) {
                    try {
                        id = std::string(json::parse(r.body).at("id").as_string());
                    } catch (const std::exception&) {
                    }
                }
                std::lock_guard lk(m);
                if (!id.empty()) {
                    accepted.push_back(id);
                    ++accepted_since_start;
                    cv.notify_all();
                } else {
                    unexpected.push_back(std::to_string(r.status) + " " + r.body);
                }
            } catch (const std::exception& e) {
                // The server died under the request: expected, not counted. The port is cleared
                // before each kill, so a failure while it is still set is the live server's.
                std::lock_guard lk(m);
                if (port == p && generation == gen)
                    unexpected.push_back(std::string("request failed on a live server: ") + e.what());
                else
                    ++connection_errors;
            }
        }
    };

    std::vector<std::thread> clients;
    // Whatever happens below (a REQUIRE throws too), the clients are told to stop and joined.
    struct joiner {
        std::mutex& m;
        std::condition_variable& cv;
        bool& done;
        std::vector<std::thread>& threads;
        void stop() {
            {
                std::lock_guard lk(m);
                done = true;
            }
            cv.notify_all();
            for (auto& t : threads)
                if (t.joinable()) t.join();
        }
        ~joiner() { stop(); }
    } stop_clients{m, cv, done, clients};
    for (int k = 0; k < 4; ++k) clients.emplace_back(client, k);

    int kills = 0, kills_while_processing = 0;
    const auto run_deadline = steady::now() + (sanitized ? 300s : 100s);
    auto total_accepted = [&] {
        std::lock_guard lk(m);
        return static_cast<int>(accepted.size());
    };
    while (kills < min_kills || total_accepted() < min_accepted) {
        INFO("kills so far: " << kills << ", accepted so far: " << total_accepted());
        REQUIRE(steady::now() < run_deadline);
        auto server = std::make_unique<server_process>(data, args, opts);
        const int target = std::uniform_int_distribution<int>(10, 40)(rng);
        {
            std::lock_guard lk(m);
            accepted_since_start = 0;
            port = server->port();
            ++generation;
        }
        cv.notify_all();
        bool reached = false;
        {
            std::unique_lock lk(m);
            reached = cv.wait_until(lk, steady::now() + (sanitized ? 120s : 60s),
                                    [&] { return accepted_since_start >= target; });
        }
        if (!reached) FAIL("the server accepted fewer than " << target << " uploads in time; it printed:\n"
                                                             << tail(server->output()));
        // Kill while a worker is busy: the uploads outrun two workers, so one nearly always is;
        // look once more to make it likelier still (a bounded look, never a wait for time).
        bool busy = false;
        for (int look = 0; look < 50 && !busy; ++look) {
            try {
                busy = any_in_state(server->port(), "processing");
            } catch (const std::exception&) {
                break;
            }
        }
        {
            std::lock_guard lk(m);
            port = 0;
        }
        CHECK(server->stop(SIGKILL) == 128 + SIGKILL);
        ++kills;
        if (busy) ++kills_while_processing;
    }
    stop_clients.stop();

    // A start-up's clean-up must empty tmp/ (uploads cut off by the kills): seen on a start without
    // workers, so that nothing else writes meanwhile. Then the final start must finish every job.
    const auto tmp_before = entries(data / "tmp").size();
    std::set<std::string> tmp_after_start;
    {
        server_process idle(data, {"--workers", "0"}, opts);
        tmp_after_start = entries(data / "tmp");
        CHECK(idle.stop(SIGKILL) == 128 + SIGKILL);
    }
    server_process server(data, args, opts);

    std::vector<std::string> ids;
    {
        std::lock_guard lk(m);
        ids = accepted;
    }
    const std::set<std::string> accepted_set(ids.begin(), ids.end());
    auto states = wait_all_final(server.port(), ids, sanitized ? 300s : 90s);

    // Every job the service knows: the accepted ones, and any whose 202 a kill cut off.
    const auto all = list_jobs(server.port());
    std::set<std::string> known;
    int orphans = 0, max_attempts_seen = 0, retried = 0, succeeded = 0, failed = 0;
    std::vector<std::string> not_succeeded;
    output_check files;
    for (const auto& j : all) {
        const std::string id = str(j.at("id"));
        known.insert(id);
        if (!accepted_set.count(id)) ++orphans;
    }
    // Jobs that only the list shows (no 202 reached their client) must finish too.
    std::vector<std::string> orphan_ids;
    for (const auto& id : known)
        if (!accepted_set.count(id)) orphan_ids.push_back(id);
    auto orphan_states = wait_all_final(server.port(), orphan_ids, sanitized ? 180s : 60s);
    for (auto& [id, j] : orphan_states.jobs) states.jobs[id] = j;
    for (const auto& id : orphan_states.unfinished) states.unfinished.push_back(id);

    for (const auto& [id, j] : states.jobs) {
        const std::string state = str(j.at("state"));
        const int attempts = static_cast<int>(j.at("attempts").to_number<std::int64_t>());
        max_attempts_seen = std::max(max_attempts_seen, attempts);
        if (attempts >= 2) ++retried;
        if (state == "succeeded") {
            ++succeeded;
            check_outputs(data, j, files, expected_sizes);
        } else {
            if (state == "failed" || state == "cancelled") ++failed;
            not_succeeded.push_back(id + " state=" + state + " attempts=" + std::to_string(attempts) +
                                    " error=" + json::serialize(j.at("error")));
        }
    }
    // Thumbnail directories of jobs nobody knows, and leftovers of the clean-up.
    std::vector<std::string> stray;
    for (const auto& d : entries(data / "thumbs"))
        if (!known.count(d)) stray.push_back("thumbs/" + d);
    const auto tmp_at_end = entries(data / "tmp");
    const bool queued_left = any_in_state(server.port(), "queued");
    const bool processing_left = any_in_state(server.port(), "processing");

    const int lost = static_cast<int>(states.missing.size() + states.unfinished.size());
    int connection_errors_seen = 0;
    std::vector<std::string> unexpected_seen;
    {
        std::lock_guard lk(m);
        connection_errors_seen = connection_errors;
        unexpected_seen = unexpected;
    }
    std::printf(
        "kills=%d kills_while_processing=%d accepted=%zu orphans=%d finished=%d lost=%d duplicated_outputs=%d "
        "half_written=%d leftover_temp=%d failed=%d retried_jobs=%d max_attempts=%d connection_errors=%d "
        "unexpected_status=%zu tmp_before_final_start=%zu\n",
        kills, kills_while_processing, ids.size(), orphans, succeeded, lost, files.duplicated, files.half_written,
        files.leftover_temp, failed, retried, max_attempts_seen, connection_errors_seen, unexpected_seen.size(),
        tmp_before);
    std::fflush(stdout);

    INFO("seed " << seed << "; the last start printed:\n" << tail(server.output()));
    CHECK(kills >= min_kills);
    CHECK(static_cast<int>(ids.size()) >= min_accepted);
    CHECK(accepted_set.size() == ids.size());  // no id handed out twice
    INFO("lost (404):\n" << first_lines(states.missing) << "never final:\n" << first_lines(states.unfinished));
    CHECK(lost == 0);
    INFO("not succeeded:\n" << first_lines(not_succeeded));
    CHECK(not_succeeded.empty());
    INFO("output problems:\n" << first_lines(files.problems));
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    INFO("stray: " << first_lines(stray));
    CHECK(stray.empty());
    CHECK(tmp_after_start.empty());
    CHECK(tmp_at_end.empty());
    CHECK_FALSE(queued_left);
    CHECK_FALSE(processing_left);
    INFO("answers other than 202 from a live server:\n" << first_lines(unexpected_seen));
    CHECK(unexpected_seen.empty());
    // The kills hit running jobs: some job was started again after one.
    CHECK(max_attempts_seen >= 2);
}

TEST_CASE("durability: a full disk gets 507 and the service recovers by itself", "[durability][disk]") {
    temp_dir dir;
    const fs::path mnt = dir.path() / "mnt";
    fs::create_directories(mnt);
    // Can this machine give us a private tmpfs without privileges? If not, say so and skip.
    {
        auto probe = tmpfs_prefix(mnt, "1m");
        probe.insert(probe.end(), {"true"});
        if (run_quiet(probe) != 0) {
            WARN("SKIPPED: cannot mount a private tmpfs (unshare --user --map-root-user --mount sh -c 'mount -t "
                 "tmpfs ...' failed here); the disk-full test did not run");
            return;
        }
    }
    launch_options opts;
    opts.prefix = tmpfs_prefix(mnt, "16m");
    opts.drain_output = true;
    server_process server(mnt / "data", {"--workers", "1", "--max-attempts", "10"}, opts);
    // The tmpfs is seen from here through the server's own root.
    const fs::path inside = fs::path("/proc") / std::to_string(server.pid()) / "root" / mnt.relative_path();
    const fs::path data = inside / "data";
    if (!fs::exists(data / "quickthumb.db")) {
        WARN("SKIPPED: the server's tmpfs is not visible through " << inside.string());
        return;
    }
    auto available = [&] { return fs::space(inside).available; };
    const unsigned short port = server.port();
    std::vector<std::string> ids;

    // Every job here is a pure-noise 600x600 JPEG (~100 KB) asked for as a 600x600 PNG (~1 MiB,
    // incompressible): on a nearly full disk the upload fits and its output does not.
    const std::string small_source = jpeg_of(noisy(600, 600, 7, 128), 40);
    const std::string query = "?sizes=600&format=png";

    // 1. A thumbnail that cannot be written on a full disk: the job must wait for a retry, not fail.
    const std::uintmax_t slack = small_source.size() + 512 * 1024;
    REQUIRE(available() > slack + 1024 * 1024);
    const fs::path ballast = inside / "ballast";
    write_ballast(ballast, (available() - slack) / 4096 * 4096);
    INFO("free after the ballast: " << available() << " bytes; the upload is " << small_source.size());
    auto big = upload(port, {{"file", "noise.jpg", "image/jpeg", small_source}}, {}, query);
    REQUIRE(big.status == 202);
    const std::string big_id = str(parse_object(big.body).at("id"));
    ids.push_back(big_id);
    json::object big_job;
    {
        const auto deadline = steady::now() + (sanitized ? 60s : 30s);
        for (;;) {
            big_job = parse_object(http_request(port, "GET", "/api/v1/jobs/" + big_id).body);
            const bool tried = !big_job.at("error").is_null() || is_final_state(str(big_job.at("state")));
            if (tried || steady::now() >= deadline) break;
            std::this_thread::sleep_for(20ms);  // polling a process: the deadline bounds a failure only
        }
    }
    INFO("the job after its first attempt on a full disk: " << json::serialize(big_job));
    CHECK(error_code_of(json::serialize(big_job)) == "storage_full");
    CHECK((str(big_job.at("state")) == "queued" || str(big_job.at("state")) == "processing"));
    // A failed write leaves nothing behind: no output, no temp file.
    CHECK(entries(data / "thumbs" / big_id).empty());

    // 2. Fill what is left with uploads until the service says 507. Their outputs cannot be written
    //    either, so they wait with their uploads kept, and the disk only fills.
    const std::string& filler = small_source;
    http_reply refused;
    int fill_accepted = 0;
    for (int i = 0; i < 200; ++i) {
        refused = upload(port, {{"file", numbered("fill", i, ".jpg"), "image/jpeg", filler}}, {}, query);
        if (refused.status != 202) break;
        ids.push_back(str(parse_object(refused.body).at("id")));
        ++fill_accepted;
    }
    INFO("filler " << filler.size() << " bytes, " << fill_accepted << " accepted before the refusal; free now "
                   << available());
    INFO("the server printed:\n" << tail(server.output(), 6000));
    // Whichever write meets the full disk first (the upload's file, or the job's row), the answer
    // is 507 storage_full.
    INFO("the first refusal: " << refused.status << " " << refused.body);
    REQUIRE(refused.status != 202);
    CHECK(refused.status == 507);
    CHECK(error_code_of(refused.body) == "storage_full");
    // An upload larger than the space left meets it while its file is being received.
    const std::string larger = jpeg_of(noisy(1000, 1000, 8, 128), 40);
    REQUIRE(larger.size() > available());
    auto refused_file = upload(port, {{"file", "larger.jpg", "image/jpeg", larger}}, {}, query);
    INFO("an upload larger than the space left: " << refused_file.status << " " << refused_file.body);
    if (refused_file.status == 202) ids.push_back(str(parse_object(refused_file.body).at("id")));
    CHECK(refused_file.status == 507);
    CHECK(refused_file.headers["content-type"].find("application/json") != std::string::npos);
    CHECK(error_code_of(refused_file.body) == "storage_full");
    std::string message = error_message_of(refused_file.body);
    std::transform(message.begin(), message.end(), message.begin(), [](unsigned char c) { return std::tolower(c); });
    CHECK((message.find("space") != std::string::npos || message.find("full") != std::string::npos));
    // Nothing of the refused upload remains: no partial file, no upload without its job.
    CHECK(entries(data / "tmp").empty());
    const std::set<std::string> known(ids.begin(), ids.end());
    for (const auto& f : entries(data / "uploads")) {
        INFO("uploads/" << f);
        CHECK(known.count(f) == 1);
    }
    // Reads still work on a full disk.
    CHECK(http_request(port, "GET", "/healthz").status == 200);
    CHECK(http_request(port, "GET", "/api/v1/jobs/" + big_id).status == 200);
    CHECK(http_request(port, "GET", "/api/v1/jobs?limit=5").status == 200);

    // 2b. The disk to the very last byte: now the jobs' own bookkeeping (SQLite's log) cannot grow
    //     either when a retry comes due. That must not strand a job: wait until some waiting job
    //     has been tried again on the brim-full disk (its row changed) or the service reports a
    //     failed write, then give the space back.
    const fs::path brim = inside / "brim";
    {
        std::ofstream out(brim, std::ios::binary);
        const std::string chunk(4096, '\x5a');
        while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && out.flush()) {
        }
    }
    INFO("free at the brim: " << available());
    auto rows = [&] {
        std::map<std::string, std::string> r;
        for (const auto& j : list_jobs(port))
            r[str(j.at("id"))] = str(j.at("state")) + "/" + json::serialize(j.at("attempts")) + "/" +
                                 str(j.at("updated_at"));
        return r;
    };
    const auto rows_at_brim = rows();
    const auto log_at_brim = server.output().size();
    bool touched = false;
    {
        const auto deadline = steady::now() + (sanitized ? 60s : 30s);
        while (!touched && steady::now() < deadline) {
            const auto log = server.output();
            touched = rows() != rows_at_brim || log.find("level=error", log_at_brim) != std::string::npos ||
                      log.find("level=warn", log_at_brim) != std::string::npos;
            if (!touched) std::this_thread::sleep_for(50ms);  // polling a process: the deadline bounds a failure only
        }
    }
    CHECK(touched);
    CHECK(http_request(port, "GET", "/healthz").status == 200);
    // How many warnings and errors the service logged at the brim (a figure, not a verdict).
    int complaints_at_brim = 0;
    {
        const std::string text = server.output().substr(log_at_brim);
        for (const char* level : {"level=warn", "level=error"})
            for (auto pos = text.find(level); pos != std::string::npos; pos = text.find(level, pos + 1))
                ++complaints_at_brim;
    }

    // 3. Space comes back: no restart, no operator. Uploads are accepted and every job finishes,
    //    the one that met the full disk too.
    fs::remove(brim);
    fs::remove(ballast);
    auto after = upload(port, {{"file", "after.jpg", "image/jpeg", filler}}, {}, query);
    INFO("upload after freeing space: " << after.status << " " << after.body);
    REQUIRE(after.status == 202);
    ids.push_back(str(parse_object(after.body).at("id")));
    auto states = wait_all_final(port, ids, sanitized ? 150s : 60s);
    INFO("the server printed:\n" << tail(server.output(), 6000));
    INFO("missing: " << first_lines(states.missing) << "unfinished: " << first_lines(states.unfinished));
    CHECK(states.missing.empty());
    CHECK(states.unfinished.empty());
    output_check files;
    std::vector<std::string> not_succeeded;
    for (const auto& [id, j] : states.jobs) {
        if (str(j.at("state")) == "succeeded")
            check_outputs(data, j, files, {{600, 600}});
        else
            not_succeeded.push_back(id + " " + json::serialize(j));
    }
    INFO("not succeeded:\n" << first_lines(not_succeeded) << "output problems:\n" << first_lines(files.problems));
    CHECK(not_succeeded.empty());
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    const auto& done_big = states.jobs[big_id];
    INFO("the job that met the full disk: " << json::serialize(done_big));
    CHECK(str(done_big.at("state")) == "succeeded");
    CHECK(done_big.at("attempts").to_number<std::int64_t>() >= 2);
    CHECK(done_big.at("outputs").as_array().size() == 1);
    CHECK(entries(data / "tmp").empty());
    std::printf("disk full: filler_accepted=%d first_refusal=%d larger_upload=%d complaints_logged_at_brim=%d "
                "big_job_attempts=%lld jobs=%zu\n",
                fill_accepted, refused.status, refused_file.status, complaints_at_brim,
                static_cast<long long>(done_big.at("attempts").to_number<std::int64_t>()), ids.size());
    std::fflush(stdout);
}

TEST_CASE("durability: a full backlog gets 429 with Retry-After and reads still work", "[durability][backlog]") {
    temp_dir dir;
    server_process server(dir.path(), {"--workers", "0", "--max-backlog", "5"});
    const auto img = jpeg_of(noisy(320, 240, 3, 16), 85);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        auto r = upload(server.port(), {{"file", numbered("b", i, ".jpg"), "image/jpeg", img}});
        INFO("upload " << i << ": " << r.status << " " << r.body);
        REQUIRE(r.status == 202);
        ids.push_back(str(parse_object(r.body).at("id")));
    }
    auto sixth = upload(server.port(), {{"file", "b5.jpg", "image/jpeg", img}});
    INFO("sixth upload: " << sixth.status << " " << sixth.body);
    REQUIRE(sixth.status == 429);
    REQUIRE(sixth.headers.count("retry-after") == 1);
    const std::string retry_after = sixth.headers.at("retry-after");
    CHECK(!retry_after.empty());
    CHECK(std::all_of(retry_after.begin(), retry_after.end(), [](unsigned char c) { return std::isdigit(c); }));
    CHECK(std::atoi(retry_after.c_str()) > 0);
    CHECK(error_code_of(sixth.body) == "backlog_full");
    CHECK(!error_message_of(sixth.body).empty());
    // A refused upload stores nothing.
    CHECK(entries(dir.path() / "tmp").empty());
    CHECK(entries(dir.path() / "uploads").size() == 5);
    CHECK(list_jobs(server.port(), "queued").size() == 5);
    // Reads still work.
    CHECK(http_request(server.port(), "GET", "/healthz").status == 200);
    for (const auto& id : ids) CHECK(http_request(server.port(), "GET", "/api/v1/jobs/" + id).status == 200);
    CHECK(list_jobs(server.port()).size() == 5);
    // Nothing runs, so a SIGTERM has nothing to wait for: the grace period (20 s by default) is a
    // bound for running jobs, not a delay every stop pays.
    const auto signalled = steady::now();
    server.signal(SIGTERM);
    auto status = server.wait_exit(30s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - signalled);
    INFO("it printed:\n" << tail(server.output()));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    INFO("SIGTERM with --workers 0 took " << took.count() << " ms");
    CHECK(took < 5s);
}

TEST_CASE("durability: SIGTERM with work in flight exits cleanly and a restart finishes every job",
          "[durability][shutdown]") {
    temp_dir dir;
    launch_options opts;
    opts.drain_output = true;
    const int grace_s = 20;
    auto server = std::make_unique<server_process>(
        dir.path(), std::vector<std::string>{"--workers", "1", "--shutdown-grace", std::to_string(grace_s)}, opts);
    // Heavy enough that one worker is still busy with them when the signal comes: a full decode and
    // two large outputs each.
    std::vector<std::string> images;
    for (std::uint32_t i = 0; i < 4; ++i) images.push_back(jpeg_of(noisy(1600, 1200, 20 + i, 24), 90));
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) {
        auto r = upload(server->port(), {{"file", numbered("s", i, ".jpg"), "image/jpeg", images[i % 4]}}, {},
                        "?sizes=1200,800&quality=90");
        REQUIRE(r.status == 202);
        ids.push_back(str(parse_object(r.body).at("id")));
    }
    // Work is in flight: a job is processing and others wait.
    bool processing = false;
    {
        const auto deadline = steady::now() + 30s;
        while (!(processing = any_in_state(server->port(), "processing")) && steady::now() < deadline)
            std::this_thread::sleep_for(5ms);  // polling a process: the deadline bounds a failure only
    }
    REQUIRE(processing);
    const auto queued_at_signal = list_jobs(server->port(), "queued").size();
    // A keep-alive connection opened before the signal, to send an upload on during the shutdown.
    connection early(server->port());
    REQUIRE(early.request("GET", "/healthz").status == 200);

    const auto signalled = steady::now();
    server->signal(SIGTERM);
    // Once the service says it is shutting down (an upload already being received then may still
    // be accepted, durably), uploads get 503 or a refused/closed connection, never a 202.
    {
        const auto deadline = steady::now() + 10s;
        while (server->output().find("shutting down") == std::string::npos && server->running() &&
               steady::now() < deadline)
            std::this_thread::sleep_for(2ms);  // polling a process: the deadline bounds a failure only
    }
    std::vector<std::string> during;
    const auto [ct, body] = multipart_body({{"file", "late.jpg", "image/jpeg", images[0]}});
    try {
        auto r = early.request("POST", "/api/v1/jobs", body, {{"Content-Type", ct}});
        during.push_back(std::to_string(r.status) + " " + error_code_of(r.body));
    } catch (const std::exception& e) {
        during.push_back("closed");
    }
    int attempts_during = 0;
    while (server->running() && attempts_during < 200) {
        ++attempts_during;
        try {
            auto r = upload(server->port(), {{"file", "late.jpg", "image/jpeg", images[0]}});
            during.push_back(std::to_string(r.status) + " " + error_code_of(r.body));
        } catch (const std::exception&) {
            during.push_back("refused");
        }
    }
    auto status = server->wait_exit(std::chrono::seconds(grace_s + 30));
    const auto took = steady::now() - signalled;
    INFO("it printed:\n" << tail(server->output()));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(took < std::chrono::seconds(grace_s + 2));
    CHECK_THAT(server->output(), Catch::Contains("shutting down"));
    for (const auto& d : during) {
        INFO("an upload during the shutdown got: " << d);
        CHECK((d == "closed" || d == "refused" || d.rfind("503 ", 0) == 0));
    }
    server.reset();

    // A restart finishes everything: nothing lost, nothing queued forever.
    server_process again(dir.path(), {"--workers", "2"}, opts);
    auto states = wait_all_final(again.port(), ids, sanitized ? 180s : 60s);
    INFO("the restart printed:\n" << tail(again.output()));
    INFO("missing: " << first_lines(states.missing) << "unfinished: " << first_lines(states.unfinished));
    CHECK(states.missing.empty());
    CHECK(states.unfinished.empty());
    output_check files;
    int succeeded = 0;
    for (const auto& [id, j] : states.jobs) {
        INFO(json::serialize(j));
        CHECK(str(j.at("state")) == "succeeded");
        if (str(j.at("state")) == "succeeded") {
            ++succeeded;
            check_outputs(dir.path(), j, files, {{1200, 900}, {800, 600}});
        }
    }
    INFO("output problems:\n" << first_lines(files.problems));
    CHECK(files.duplicated == 0);
    CHECK(files.leftover_temp == 0);
    CHECK(files.half_written == 0);
    CHECK_FALSE(any_in_state(again.port(), "queued"));
    CHECK_FALSE(any_in_state(again.port(), "processing"));
    CHECK(list_jobs(again.port()).size() == ids.size());
    const auto tally = [&](auto pred) { return std::count_if(during.begin(), during.end(), pred); };
    std::printf("sigterm: jobs=%zu queued_at_signal=%zu uploads_during_shutdown=%zu (503=%zd refused=%zd closed=%zd) "
                "exit=%d shutdown_ms=%lld succeeded_after_restart=%d\n",
                ids.size(), queued_at_signal, during.size(),
                tally([](const std::string& d) { return d.rfind("503 ", 0) == 0; }),
                tally([](const std::string& d) { return d == "refused"; }),
                tally([](const std::string& d) { return d == "closed"; }), *status,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()), succeeded);
    std::fflush(stdout);
}

TEST_CASE("durability: a read-only data directory gets 507 and the service recovers by itself", "[durability][disk]") {
    temp_dir dir;
    const fs::path mnt = dir.path() / "mnt";
    fs::create_directories(mnt);
    {
        auto probe = tmpfs_prefix(mnt, "1m");
        probe.insert(probe.end(), {"true"});
        if (run_quiet(probe) != 0 || run_quiet({"nsenter", "--version"}) != 0) {
            WARN("SKIPPED: cannot mount a private tmpfs or nsenter is missing; the read-only test did not run");
            return;
        }
    }
    launch_options opts;
    opts.prefix = tmpfs_prefix(mnt, "16m");
    opts.drain_output = true;
    server_process server(mnt / "data", {"--workers", "1"}, opts);
    const auto p = server.port();
    // Makes the upload area read-only from inside the service's namespaces: a read-only bind mount
    // over data/tmp (remounting the whole tmpfs read-only is refused while SQLite holds files open
    // for writing). Unmounting it gives the writable directory back.
    const std::string tmp_dir = (mnt / "data" / "tmp").string();
    auto in_ns = [&](std::string script) {
        return run_quiet({"nsenter", "-t", std::to_string(server.pid()), "-U", "-m", "--preserve-credentials", "sh",
                          "-c", script, tmp_dir});
    };
    auto make_read_only = [&] { return in_ns("mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\""); };
    auto make_writable = [&] { return in_ns("umount \"$0\""); };
    const fs::path data = fs::path("/proc") / std::to_string(server.pid()) / "root" / mnt.relative_path() / "data";
    const auto img = jpeg_of(noisy(200, 150, 7, 40), 85);

    REQUIRE(make_read_only() == 0);
    auto refused = upload(p, {{"file", "a.jpg", "image/jpeg", img}});
    INFO(refused.body);
    CHECK(refused.status == 507);
    CHECK(error_code_of(refused.body) == "storage_readonly");
    CHECK_THAT(error_message_of(refused.body), Catch::Contains("Read-only"));
    CHECK(entries(data / "uploads").empty());
    CHECK(http_request(p, "GET", "/healthz").status == 200);
    auto not_ready = http_request(p, "GET", "/readyz");
    CHECK(not_ready.status == 503);  // a load balancer stops sending uploads here
    CHECK_THAT(not_ready.body, Catch::Contains("storage_readonly"));
    CHECK(http_request(p, "GET", "/api/v1/jobs").status == 200);

    REQUIRE(make_writable() == 0);  // the operator fixes the mount: no restart needed
    CHECK(http_request(p, "GET", "/readyz").status == 200);
    auto ok = upload(p, {{"file", "a.jpg", "image/jpeg", img}});
    REQUIRE(ok.status == 202);
    const auto id = str(parse_object(ok.body).at("id"));
    CHECK(str(parse_object(wait_for_final(p, id, 60s)).at("state")) == "succeeded");
}
