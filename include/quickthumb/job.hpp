#pragma once
// The job: its fields, its options and its state machine. Pure data and logic, no I/O.
#include "quickthumb/error.hpp"
#include "quickthumb/image.hpp"

#include <boost/json/value.hpp>
#include <cstddef>
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

// A job's options use the image engine's own vocabulary, so nothing translates between the two.
using fit_mode = image::fit;               // contain, cover, fill
using output_format = image::out_format;   // jpeg, png, webp
using colour = image::rgb;                 // default white

std::string_view to_string(fit_mode f) noexcept;
std::string_view to_string(output_format f) noexcept;
std::string_view extension(output_format f) noexcept;   // "jpg", "png", "webp"
std::string_view mime_type(output_format f) noexcept;   // "image/jpeg", ...
std::optional<fit_mode> parse_fit_mode(std::string_view s) noexcept;            // "contain", "cover", "fill"
std::optional<output_format> parse_output_format(std::string_view s) noexcept;  // "jpeg" or "jpg", "png", "webp"

// One requested output: the box it must fit. 0 leaves that side unconstrained (never both): a
// one-sided box scales the image to that side whatever the fit.
struct box {
    int width = 0;
    int height = 0;
    bool operator==(const box&) const = default;
};

std::string to_string(colour c);                              // "#rrggbb"
std::optional<colour> parse_colour(std::string_view s) noexcept;  // "#rrggbb" or "rrggbb", any case

// Limits on what one job may ask for: each output is bounded, and so is their number, so one
// upload cannot ask for gigabytes of pixels.
inline constexpr int max_box_side = 8192;
inline constexpr std::size_t max_sizes = 8;

// What the client asked for; the defaults are what an upload without options gets.
struct job_params {
    std::vector<box> sizes{{256, 256}};  // one output per distinct box, in this order
    fit_mode fit = fit_mode::contain;
    output_format format = output_format::jpeg;
    int quality = 80;          // 1..100, JPEG and WebP
    bool progressive = false;  // JPEG only
    bool enlarge = false;      // upscale a source smaller than the box
    colour background{};       // JPEG only: transparent pixels are flattened onto it
    bool keep_metadata = false;  // copy the source's EXIF (Orientation 1) into the outputs
};

// Parses options from name=value pairs (query string or form fields). Unknown names are refused
// so typos do not pass silently. Returns invalid_option with a message naming the field and what
// it accepts.
//   sizes=128,256,640x480,300x,x200  up to max_sizes boxes: N (longest side, a box NxN), WxH, Wx or xH
//   width=, height=                  one box (the older form); not together with sizes
//   fit=contain|cover|fill  format=jpeg|jpg|png|webp  quality=1..100
//   progressive=, enlarge=, keep_metadata=  true|false|1|0
//   background=#rrggbb|rrggbb
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

// One change of a job: what the jobs service tells every subscriber, in commit order.
struct job_change {
    std::optional<job_state> previous;  // the state it left; none: a new job (accepted)
    job now;                            // the job after the change, as committed
    bool stored = true;                 // false: progress, published but never written down
    std::optional<double> attempt_seconds;  // an attempt's outcome: how long the attempt took
    // On the Redis store every change is also read back from the shared events stream, by every
    // instance: such a change carries its event number, and says whether it was another
    // instance's (this instance heard its own already, from its store, when it committed).
    std::uint64_t event = 0;
    bool from_stream = false;
    bool remote = false;
};

// Each output's url is url_base (--public-base-url; "" for the service's own) + /thumbs/ID/NAME.
boost::json::object to_json(const job& j, std::string_view url_base = {});
boost::json::object to_json(const job_params& p);
// Parses what to_json(job_params) wrote (the store keeps params as JSON). Keys an older version
// did not write get their defaults; its width/height become the one box.
result<job_params> job_params_from_json(std::string_view text);
std::string outputs_to_json(const std::vector<job_output>& outputs);
std::vector<job_output> outputs_from_json(std::string_view text);

// 128 random bits from the kernel's CSPRNG, base64url without padding: 22 characters.
std::string new_job_id();
bool is_valid_job_id(std::string_view id) noexcept;

std::int64_t now_ms() noexcept;

// How long a job waits before its next attempt after `attempts` transient failures: exponential
// (1 s, 2 s, 4 s, ... capped at 5 min) with jitter, so jobs that failed together (a full disk) do
// not all come back at the same moment. `unit_random` is uniform in [0, 1): the delay is drawn
// from [half, full] of the step.
inline constexpr std::int64_t retry_base_ms = 1000;
inline constexpr std::int64_t retry_cap_ms = 5 * 60 * 1000;
std::int64_t retry_delay_ms(int attempts, double unit_random) noexcept;

}  // namespace quickthumb
