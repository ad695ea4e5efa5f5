// POST /api/v1/jobs: streams the body into the blob store (never the whole upload in memory), then
// makes the jobs durable (uploads committed, rows committed) before answering 202. Each file's
// first bytes are sniffed as they arrive: anything but a format the engine decodes refuses the
// whole request at once with 415, before any job is stored.
#include "handlers.hpp"

#include "quickthumb/image.hpp"
#include "quickthumb/job.hpp"
#include "quickthumb/log.hpp"
#include "quickthumb/metrics.hpp"
#include "quickthumb/multipart.hpp"
#include "quickthumb/blob_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/json.hpp>

#include <charconv>

namespace quickthumb::http {
namespace asio = boost::asio;

namespace {

constexpr std::size_t max_files = 100;
constexpr std::size_t max_fields = 32;
constexpr std::size_t max_field_bytes = 1024;
constexpr std::size_t read_chunk = 64 * 1024;
// image::sniff decides from at most this much (an SVG's XML prolog is the longest it reads).
constexpr std::size_t sniff_bytes = 1024;

// One file of an upload as it arrives. The body parser's callbacks only buffer (they cannot
// wait); after each chunk of the body the handler hands what was buffered to the blob store
// (flush), so at most one read chunk per request is held in memory and no file I/O runs here.
class received_file {
public:
    void write(std::string_view data) {
        if (head_.size() < sniff_bytes) head_.append(data.substr(0, sniff_bytes - head_.size()));
        bytes_ += static_cast<std::int64_t>(data.size());
        if (!failure_) pending_.append(data);
    }
    // Appends what was buffered to the file's blob (begun on the first call). A failure is kept
    // for the answer; the rest of the body is still read, so the connection stays usable.
    asio::awaitable<void> flush(blob_store& blobs) {
        if (failure_) co_return;
        if (!blob_) {
            auto begun = co_await blobs.begin_upload();
            if (!begun) {
                failure_ = begun.error();
                pending_.clear();
                co_return;
            }
            blob_ = std::move(*begun);
        }
        if (pending_.empty()) co_return;
        auto r = co_await blob_->append(
            std::span(reinterpret_cast<const std::uint8_t*>(pending_.data()), pending_.size()));
        pending_.clear();
        if (!r) failure_ = r.error();
    }
    blob_store::upload* blob() const { return blob_.get(); }
    std::int64_t bytes() const { return bytes_; }
    const std::optional<error>& failure() const { return failure_; }

    // Once enough of the file has arrived to tell (or all of it, at_end): an error if it is not an
    // image the engine decodes. An empty file is left to the caller's own, clearer message.
    std::optional<error> check_format(bool at_end) {
        if (format_checked_ || (!at_end && head_.size() < sniff_bytes) || bytes_ == 0) return std::nullopt;
        format_checked_ = true;
        const auto f = image::sniff(
            std::span(reinterpret_cast<const std::uint8_t*>(head_.data()), head_.size()));
        head_ = {};
        auto refused = image::unsupported_input(f);
        if (refused) refused->message = "'" + filename + "': " + refused->message;
        return refused;
    }

    std::string filename;

private:
    std::unique_ptr<blob_store::upload> blob_;  // removed with it unless committed
    std::string pending_;                        // received, not yet appended
    std::int64_t bytes_ = 0;
    std::optional<error> failure_;
    std::string head_;  // the first sniff_bytes, for check_format
    bool format_checked_ = false;
};

// Keeps only a safe display name: no directories, no control characters, bounded length.
std::string clean_filename(std::string_view name) {
    if (auto slash = name.find_last_of("/\\"); slash != std::string_view::npos) name.remove_prefix(slash + 1);
    std::string out;
    for (char c : name)
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
    if (out.size() > 255) out.resize(255);
    return out.empty() ? "upload" : out;
}

bool is_file_field(std::string_view name) { return name == "file" || name == "files" || name == "file[]"; }

std::string_view media_type(std::string_view content_type) {
    auto semi = content_type.find(';');
    auto t = content_type.substr(0, semi);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    return t;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    return true;
}

// Receives a multipart body: file parts into temp files, other parts into `fields`.
struct multipart_sink {
    std::vector<std::unique_ptr<received_file>> uploads{};
    std::multimap<std::string, std::string> fields{};
    std::optional<error> failure{};
    received_file* current_file = nullptr;
    std::string* current_field = nullptr;

    // One file that is not an image refuses the whole request: simpler for a client than a
    // partial success, and nothing has been stored yet.
    void refuse_unless_image(bool at_end) {
        if (failure || !current_file) return;
        if (auto e = current_file->check_format(at_end)) {
            if (uploads.size() > 1) e->message += "; the whole request is refused, no job was created";
            failure = std::move(e);
            current_file = nullptr;
        }
    }

    multipart::callbacks callbacks() {
        return {
            [this](const multipart::part_header& h) {
                current_file = nullptr;
                current_field = nullptr;
                if (failure) return;
                if (is_file_field(h.name)) {
                    if (uploads.size() >= max_files) {
                        failure = error{errc::bad_request, "too many files in one upload (at most " +
                                                               std::to_string(max_files) + ")"};
                        return;
                    }
                    uploads.push_back(std::make_unique<received_file>());
                    uploads.back()->filename = clean_filename(h.filename.value_or("upload"));
                    current_file = uploads.back().get();
                } else {
                    if (fields.size() >= max_fields) {
                        failure = error{errc::bad_request, "too many form fields"};
                        return;
                    }
                    current_field = &fields.emplace(h.name, std::string())->second;
                }
            },
            [this](std::string_view data) {
                if (current_file) {
                    current_file->write(data);
                    refuse_unless_image(false);
                } else if (current_field) {
                    if (current_field->size() + data.size() > max_field_bytes) {
                        failure = error{errc::bad_request, "a form field is longer than " +
                                                               std::to_string(max_field_bytes) + " bytes"};
                        current_field = nullptr;
                        return;
                    }
                    current_field->append(data);
                }
            },
            [this] {
                if (current_file) refuse_unless_image(true);
                current_file = nullptr;
                current_field = nullptr;
            },
        };
    }
};

// Idempotency-Key: what Stripe and the IETF draft use. Any visible ASCII, bounded.
std::optional<error> check_idempotency_key(std::string_view key) {
    if (key.empty() || key.size() > 255)
        return error{errc::bad_request, "Idempotency-Key must be 1 to 255 characters"};
    for (char c : key)
        if (c < 0x21 || c > 0x7e)
            return error{errc::bad_request, "Idempotency-Key may hold only visible ASCII characters"};
    return std::nullopt;
}

// The answer to an upload: one job, or {"jobs": [...]} for several; 202 either way, also when
// an Idempotency-Key replays an earlier request (marked by Idempotent-Replayed: true).
answer accepted_response(const request_header& req, const std::vector<job>& jobs, bool replayed) {
    boost::json::value body;
    if (jobs.size() == 1) {
        body = to_json(jobs[0]);
    } else {
        boost::json::array arr;
        for (const auto& j : jobs) arr.push_back(to_json(j));
        body = boost::json::object{{"jobs", std::move(arr)}};
    }
    bhttp::response<bhttp::string_body> res{bhttp::status::accepted, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    if (!jobs.empty()) res.set(bhttp::field::location, "/api/v1/jobs/" + jobs[0].id);
    res.set(bhttp::field::cache_control, "no-store");
    if (replayed) res.set("Idempotent-Replayed", "true");
    res.keep_alive(req.keep_alive());
    res.body() = boost::json::serialize(body) + "\n";
    security_headers(res);
    res.prepare_payload();
    return res;
}

// `max_attempts` is a job option but not an image option: taken out of the fields here, so the
// rest go to parse_job_params. Returns the value (or `fallback`), or invalid_option.
result<int> take_max_attempts(std::multimap<std::string, std::string>& fields, int fallback) {
    if (fields.count("max_attempts") > 1) return error{errc::invalid_option, "max_attempts is given more than once"};
    auto it = fields.find("max_attempts");
    if (it == fields.end()) return fallback;
    int v = 0;
    const auto& text = it->second;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || v < 1 || v > 100)
        return error{errc::invalid_option, "max_attempts must be a whole number from 1 to 100, got '" + text + "'"};
    fields.erase(it);
    return v;
}

}  // namespace

asio::awaitable<answer> handle_upload(services& svc, beast::tcp_stream& stream,
                                                        beast::flat_buffer& buffer, header_parser& hparser) {
    // Copy the header: the parser is moved into the body parser below.
    request_header req = hparser.get();
    auto refuse = [&](errc code, std::string msg) {
        req.keep_alive(false);  // the body was not read: the connection cannot be reused
        return error_response(req, status_for(code), code, std::move(msg));
    };

    if (!svc.accepting.load()) co_return refuse(errc::shutting_down, "the service is shutting down; try again shortly");
    if (svc.jobs.waiting() >= static_cast<std::int64_t>(svc.cfg.max_backlog)) {
        req.keep_alive(false);
        bhttp::response<bhttp::string_body> res{bhttp::status::too_many_requests, req.version()};
        res.set(bhttp::field::retry_after, "5");
        res.set(bhttp::field::content_type, "application/json");
        res.keep_alive(false);
        res.body() = R"({"error":{"code":"backlog_full","message":"too many jobs are waiting; retry later"}})"
                     "\n";
        security_headers(res);
    res.prepare_payload();
        co_return answer(std::move(res));
    }
    // A request already seen under this key gets its first answer again, before the body is read.
    std::optional<std::string> idempotency_key;
    if (auto it = req.find("Idempotency-Key"); it != req.end()) {
        idempotency_key = std::string(it->value());
        if (auto bad = check_idempotency_key(*idempotency_key)) co_return refuse(bad->code, bad->message);
        auto seen = co_await svc.jobs.replay(*idempotency_key);
        if (!seen) co_return refuse(seen.error().code, seen.error().message);
        if (*seen) {
            req.keep_alive(false);  // the body was not read
            co_return accepted_response(req, **seen, true);
        }
    }
    if (auto len = hparser.content_length(); len && *len > svc.cfg.max_upload)
        co_return refuse(errc::payload_too_large, "the upload is larger than the limit of " +
                                                      std::to_string(svc.cfg.max_upload) + " bytes");

    auto query = query_fields(req.target());
    if (!query) co_return refuse(query.error().code, query.error().message);

    const std::string content_type(req[bhttp::field::content_type]);
    std::optional<std::string> boundary;
    const bool raw = iequals_prefix(media_type(content_type), "image/") ||
                     iequals_prefix(media_type(content_type), "application/octet-stream");
    if (!raw) {
        auto b = multipart::boundary_of(content_type);
        if (!b && b.error().code == errc::bad_request) co_return refuse(errc::bad_request, b.error().message);
        if (!b)
            co_return refuse(errc::unsupported_media_type,
                             "send multipart/form-data with a boundary and a 'file' field, or a raw image/* body (got "
                             "Content-Type '" + content_type.substr(0, 200) + "')");
        boundary = std::move(*b);
    }

    // The body: into temp files as it arrives.
    multipart_sink sink;
    std::optional<multipart::parser> mp;
    if (boundary) {
        mp.emplace(*boundary, sink.callbacks());
    } else {
        sink.uploads.push_back(std::make_unique<received_file>());
        auto name = query->find("filename");
        sink.uploads.back()->filename = clean_filename(name != query->end() ? name->second : "upload");
        if (name != query->end()) query->erase(name);
        sink.current_file = sink.uploads.back().get();
    }
    // Options in the query are known now: a bad one is refused before the body is streamed.
    const bool query_has_attempts = query->count("max_attempts") > 0;
    auto query_attempts = take_max_attempts(*query, svc.cfg.max_attempts);
    if (!query_attempts) co_return refuse(query_attempts.error().code, query_attempts.error().message);
    if (auto early = parse_job_params(*query); !early) co_return refuse(early.error().code, early.error().message);

    if (req[bhttp::field::expect] == "100-continue") {
        // Tell the client to send the body now rather than after its own timeout.
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, req.version()};
        stream.expires_after(write_timeout);
        auto [cec, cn] = co_await bhttp::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
        if (cec) co_return refuse(errc::bad_request, "connection failed");
    }

    bhttp::request_parser<bhttp::buffer_body> parser(std::move(hparser));
    parser.body_limit(svc.cfg.max_upload);
    std::vector<char> chunk(read_chunk);
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        stream.expires_after(svc.cfg.body_timeout);
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec == bhttp::error::body_limit)
            co_return refuse(errc::payload_too_large, "the upload is larger than the limit of " +
                                                          std::to_string(svc.cfg.max_upload) + " bytes");
        if (ec) co_return refuse(errc::bad_request, "the upload did not arrive whole: " + ec.message());
        std::string_view got(chunk.data(), chunk.size() - parser.get().body().size);
        if (svc.metrics) svc.metrics->add_upload_bytes(got.size());
        if (mp) {
            if (auto perr = mp->feed(got)) co_return refuse(errc::bad_request, "malformed multipart body: " + mp->error_message());
        } else {
            sink.uploads.back()->write(got);
            sink.refuse_unless_image(false);
        }
        if (sink.failure) co_return refuse(sink.failure->code, sink.failure->message);
        for (auto& u : sink.uploads) co_await u->flush(svc.files);
    }
    // From here on the whole request has been read: the connection may be kept.
    if (!mp) {
        sink.refuse_unless_image(true);  // a raw body shorter than sniff_bytes
        if (sink.failure) co_return error_response(req, *sink.failure);
    }
    if (mp && !mp->started())
        co_return error_response(req, bhttp::status::bad_request, errc::bad_request,
                                 "malformed multipart body: the boundary from Content-Type never appears in it");
    if (mp && !mp->done())
        co_return error_response(req, bhttp::status::bad_request, errc::bad_request,
                                 "malformed multipart body: it ended before the closing boundary");
    if (sink.uploads.empty())
        co_return error_response(req, bhttp::status::bad_request, errc::bad_request,
                                 "no image in the request: send it as a multipart field named 'file'");
    for (auto& u : sink.uploads) {
        co_await u->flush(svc.files);  // a file whose part ended the body
        if (u->failure()) co_return error_response(req, *u->failure());
        if (u->bytes() == 0)
            co_return error_response(req, bhttp::status::bad_request, errc::bad_request,
                                     "the file '" + u->filename + "' is empty");
    }

    // Options: query string and form fields together (the same name twice is refused).
    auto options = *query;
    options.insert(sink.fields.begin(), sink.fields.end());
    if (query_has_attempts && options.count("max_attempts") > 0)
        co_return error_response(req, error{errc::invalid_option, "max_attempts is given more than once"});
    auto max_attempts = take_max_attempts(options, *query_attempts);
    if (!max_attempts) co_return error_response(req, max_attempts.error());
    auto params = parse_job_params(options);
    if (!params) co_return error_response(req, params.error());

    std::vector<job> jobs;
    const auto now = now_ms();
    for (auto& u : sink.uploads) {
        job j;
        j.id = new_job_id();
        j.created_at = j.updated_at = now;
        j.source.filename = u->filename;
        j.source.bytes = u->bytes();
        j.params = *params;
        j.max_attempts = *max_attempts;
        jobs.push_back(std::move(j));
    }

    // Durable before 202: upload files flushed and moved into place, then the rows committed.
    std::vector<std::string> ids;
    std::vector<blob_store::upload*> blobs;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        ids.push_back(jobs[i].id);
        blobs.push_back(sink.uploads[i]->blob());
    }
    auto committed = co_await svc.files.commit_uploads(std::move(blobs), ids);
    if (!committed) co_return error_response(req, committed.error());
    // Uploads whose jobs were not made (or were made by an earlier request with the same key).
    auto remove_uploads = [&]() -> asio::awaitable<void> {
        for (const auto& id : ids)
            if (auto r = co_await svc.files.remove_job(id); !r)
                log::warn("upload of a refused request not removed", "job=" + id + " error=\"" + r.error().message + "\"");
    };
    auto accepted = co_await svc.jobs.accept(std::move(jobs), idempotency_key);
    if (!accepted) {
        if (is_store_failure(accepted.error().code))
            log::error("job insert failed", "error=\"" + accepted.error().message + "\"");
        co_await remove_uploads();
        co_return error_response(req, accepted.error());
    }
    if (accepted->replayed) {
        // A request with the same key won the race while this body was arriving: its jobs stand.
        co_await remove_uploads();
        co_return accepted_response(req, accepted->jobs, true);
    }
    for (const auto& j : accepted->jobs)
        log::info("job queued", "job=" + j.id + " bytes=" + std::to_string(j.source.bytes));
    co_return accepted_response(req, accepted->jobs, false);
}

}  // namespace quickthumb::http
