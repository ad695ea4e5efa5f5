#pragma once
// What the black-box durability tests (tests/test_durability_*.cpp) share: noisy pictures to
// upload, reading the job list and error answers, waiting until every accepted job is final, and
// checking a finished job's files against what its JSON lists.
#include "quickthumb/error.hpp"
#include "quickthumb/image.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qt_test {

// Under ASan everything runs several times slower: the tests ask for less and wait longer.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

// ---- pictures -------------------------------------------------------------------------------

// A gradient with per-pixel noise of +-amplitude (128: nothing but noise, which no codec shrinks).
quickthumb::image::pixels noisy(int w, int h, std::uint32_t seed, int amplitude);

// The encoded bytes as a string to upload; fails the test when the encoder refused.
std::string as_string(const quickthumb::result<std::vector<std::uint8_t>>& enc);

std::string jpeg_of(const quickthumb::image::pixels& p, int quality);

// "p7.jpg" (and not "p" + std::to_string(7) + ".jpg", which GCC 12 warns about wrongly).
std::string numbered(std::string_view prefix, long long n, std::string_view suffix);

// ---- JSON and files -------------------------------------------------------------------------

bool is_final_state(const std::string& s);

// error.code and error.message of an error answer ("" when the body is not one).
std::string error_code_of(const std::string& body);
std::string error_message_of(const std::string& body);

// Names in a directory (none if it does not exist).
std::set<std::string> entries(const std::filesystem::path& dir);

// Every job the service knows, through the paginated list (newest first).
std::vector<boost::json::object> list_jobs(unsigned short port, const std::string& state = {});

// Whether any job is in `state` (queued, processing).
bool any_in_state(unsigned short port, const std::string& state);

// What became of a set of accepted ids, once nothing is left to wait for.
struct final_states {
    std::map<std::string, boost::json::object> jobs;  // id -> its JSON, final
    std::vector<std::string> missing;                 // 404: the service does not know the job (lost)
    std::vector<std::string> unfinished;              // still queued/processing at the deadline (stuck)
};

// Waits (bounded) until every id is final. While some are not, it waits for the service to have
// nothing queued or processing, then asks each remaining id again; a 404 is final too (lost).
final_states wait_all_final(unsigned short port, const std::vector<std::string>& ids,
                            std::chrono::steady_clock::duration timeout);

// The files of one finished job against what its JSON lists.
struct output_check {
    int duplicated = 0;    // outputs listed twice, or files in thumbs/<id>/ the job does not list
    int leftover_temp = 0; // temp files (".tmp", ".part") left in thumbs/<id>/
    int half_written = 0;  // listed files missing, undecodable, or of another size than listed
    std::vector<std::string> problems;
};

// Adds what is wrong with `job`'s files under `data` to `out`; with `expected_sizes`, the outputs
// must have exactly those sizes, in that order.
void check_outputs(const std::filesystem::path& data, const boost::json::object& job, output_check& out,
                   const std::vector<std::pair<int, int>>& expected_sizes = {});

// The first n lines of a list, for a failure message.
std::string first_lines(const std::vector<std::string>& v, std::size_t n = 10);

// The end of a long log, for a failure message.
std::string tail(const std::string& s, std::size_t n = 4000);

}  // namespace qt_test
