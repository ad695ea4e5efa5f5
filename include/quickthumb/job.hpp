#pragma once
// The job: its fields, its options and its state machine. Pure data and logic, no I/O.
#include "quickthumb/error.hpp"

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb {

enum class job_state { queued, processing, succeeded, failed, cancelled };

std::string_view to_string(job_state s) noexcept;
std::optional<job_state> parse_job_state(std::string_view s) noexcept;
bool is_final(job_state s) noexcept;

// The transitions the store allows; anything else is refused (a bug or a race lost).
//   queued -> processing | cancelled
//   processing -> succeeded | failed | cancelled | queued (retry / crash recovery)
//   failed | cancelled -> queued (explicit retry)
bool can_transition(job_state from, job_state to) noexcept;

enum class fit_mode { contain, cover };
enum class output_format { jpeg, png };

std::string_view to_string(fit_mode f) noexcept;
std::string_view to_string(output_format f) noexcept;
std::string_view extension(output_format f) noexcept;   // "jpg", "png"
std::string_view mime_type(output_format f) noexcept;   // "image/jpeg", ...

// What the client asked for. width/height 0 means "not constrained"; both 0 is replaced by
// the default box (256 x 256, i.e. longest side 256).
struct job_params {
    int width = 256;
    int height = 256;
    fit_mode fit = fit_mode::contain;
    output_format format = output_format::jpeg;
    int quality = 80;  // 1..100, JPEG only
};

// Parses options from name=value pairs (query string or form fields). Unknown names are refused
// so typos do not pass silently. Returns invalid_option with a message naming the field.
result<job_params> parse_job_params(const std::multimap<std::string, std::string>& fields);

struct job_source {
    std::string filename;
    std::int64_t bytes = 0;
    std::string format;  // "jpeg", "png", ... once known
    int width = 0;
    int height = 0;
};

struct job_output {
    std::string name;  // file name under thumbs/<id>/
    int width = 0;
    int height = 0;
    std::int64_t bytes = 0;
};

struct job {
    std::string id;
    std::int64_t seq = 0;  // insertion order; the list cursor
    job_state state = job_state::queued;
    int progress = 0;
    int attempts = 0;
    int max_attempts = 3;
    std::int64_t created_at = 0;  // ms since the epoch
    std::int64_t updated_at = 0;
    std::int64_t run_after = 0;
    std::optional<error> last_error;
    job_source source;
    job_params params;
    std::vector<job_output> outputs;
};

boost::json::object to_json(const job& j);
boost::json::object to_json(const job_params& p);
// Parses what to_json(job_params) wrote (the store keeps params as JSON).
result<job_params> job_params_from_json(std::string_view text);
std::string outputs_to_json(const std::vector<job_output>& outputs);
std::vector<job_output> outputs_from_json(std::string_view text);

// 128 random bits from the kernel's CSPRNG, base64url without padding: 22 characters.
std::string new_job_id();
bool is_valid_job_id(std::string_view id) noexcept;

std::int64_t now_ms() noexcept;

}  // namespace quickthumb
