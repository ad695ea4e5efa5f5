#include "support/durability.hpp"

#include "support/catch_result.hpp"
#include "support/json.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace qt_test {

namespace {

bool is_temp_name(const std::string& name) {
    return name.find(".tmp") != std::string::npos || name.find(".part") != std::string::npos ||
           (!name.empty() && name[0] == '.');
}

}  // namespace

// ---- pictures -------------------------------------------------------------------------------

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

std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
    return out;
}

std::vector<json::object> list_jobs(unsigned short port, const std::string& state) {
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

bool any_in_state(unsigned short port, const std::string& state) {
    auto r = http_request(port, "GET", "/api/v1/jobs?limit=1&state=" + state);
    REQUIRE(r.status == 200);
    return !parse_object(r.body).at("jobs").as_array().empty();
}

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

void check_outputs(const fs::path& data, const json::object& job, output_check& out,
                   const std::vector<std::pair<int, int>>& expected_sizes) {
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
        const std::vector<std::uint8_t> file = read_file(dir / name);
        auto hdr = quickthumb::image::read_header(file);
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

std::string first_lines(const std::vector<std::string>& v, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < n; ++i) s += "  " + v[i] + "\n";
    if (v.size() > n) s += "  ... and " + std::to_string(v.size() - n) + " more\n";
    return s;
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

}  // namespace qt_test
