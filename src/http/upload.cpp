// POST /api/v1/jobs, the HTTP part: checks from the header alone (shutdown, backlog, idempotency
// replay, size, content type, query options), then read_upload streams the body through
// upload_body (multipart, sniffing: anything but a format the engine decodes refuses the whole
// request at once with 415) into the blob store, never the whole upload in memory; the options
// are parsed once the form fields are in, and the jobs core (jobs_service::accept) makes the
// uploads and their jobs durable before the 202.
#include "handlers.hpp"
#include "upload_body.hpp"

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

constexpr std::size_t read_chunk = 64 * 1024;

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

// Hands what each file received since the last call to the blob store (a file's blob begins on
// its first call). A store failure stays with its file for the answer; the body is still read.
asio::awaitable<void> store_pending(upload_body& body, blob_store& blobs) {
    for (auto& f : body.files()) {
        std::string data = f->take_pending();
        if (f->failure) continue;
        if (!f->blob) {
            auto begun = co_await blobs.begin_upload(new_job_id());
            if (!begun) {
                f->failure = begun.error();
                continue;
            }
            f->blob = std::move(*begun);
        }
        if (data.empty()) continue;
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
        if (auto r = co_await f->blob->append(bytes); !r) f->failure = r.error();
    }
}

// Reads an upload's body from the stream into `body`, its files into the blob store as they
// arrive. A refusal before the body's end (malformed, too large, not an image) says so with
// body_read = false: the connection cannot be reused.
struct read_outcome {
    std::optional<error> refused;
    bool body_read = false;
};
asio::awaitable<read_outcome> read_upload(services& svc, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                          header_parser& hparser, upload_body& body) {
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
            co_return read_outcome{error{errc::payload_too_large, "the upload is larger than the limit of " +
                                                                      std::to_string(svc.cfg.max_upload) + " bytes"}};
        if (ec) co_return read_outcome{error{errc::bad_request, "the upload did not arrive whole: " + ec.message()}};
        std::string_view got(chunk.data(), chunk.size() - parser.get().body().size);
        if (svc.metrics) svc.metrics->add_upload_bytes(got.size());
        body.feed(got);
        if (body.refused()) co_return read_outcome{body.refused()};
        co_await store_pending(body, svc.files);
    }
    // From here on the whole request has been read: the connection may be kept.
    co_await store_pending(body, svc.files);  // a file whose part ended the body
    co_return read_outcome{body.finish(), true};
}

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
answer accepted_response(const request_header& req, const std::vector<job>& jobs, bool replayed,
                         std::string_view url_base) {
    boost::json::value body;
    if (jobs.size() == 1) {
        body = to_json(jobs[0], url_base);
    } else {
        boost::json::array arr;
        for (const auto& j : jobs) arr.push_back(to_json(j, url_base));
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

// Whatever the body's files wrote, gone before the refusal is answered.
asio::awaitable<void> discard_files(upload_body& body) {
    for (auto& f : body.files())
        if (f->blob) co_await f->blob->discard();
}

// The options (query string and form fields together: the same name twice is refused), then the
// jobs core makes the uploads and their jobs durable.
asio::awaitable<result<jobs_service::accepted>> accept_body(services& svc, upload_body& body,
                                                            std::multimap<std::string, std::string> options,
                                                            bool query_has_attempts, int query_attempts,
                                                            std::optional<std::string> key) {
    options.insert(body.fields().begin(), body.fields().end());
    if (query_has_attempts && options.count("max_attempts") > 0)
        co_return error{errc::invalid_option, "max_attempts is given more than once"};
    auto max_attempts = take_max_attempts(options, query_attempts);
    if (!max_attempts) co_return max_attempts.error();
    auto params = parse_job_params(options);
    if (!params) co_return params.error();
    std::vector<jobs_service::received> files;
    for (const auto& f : body.files()) files.push_back(jobs_service::received{f->blob.get(), f->filename, f->bytes()});
    co_return co_await svc.jobs.accept(std::move(files), *params, *max_attempts, std::move(key));
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
    if (svc.jobs.waiting() >= static_cast<std::int64_t>(svc.cfg.max_backlog))
        co_return retry_later_response(req.version(), error{errc::backlog_full, "too many jobs are waiting; retry later"}, 5);
    // A request already seen under this key gets its first answer again, before the body is read.
    std::optional<std::string> idempotency_key;
    if (auto it = req.find("Idempotency-Key"); it != req.end()) {
        idempotency_key = std::string(it->value());
        if (auto bad = check_idempotency_key(*idempotency_key)) co_return refuse(bad->code, bad->message);
        auto seen = co_await svc.jobs.replay(*idempotency_key);
        if (!seen) co_return refuse(seen.error().code, seen.error().message);
        if (*seen) {
            req.keep_alive(false);  // the body was not read
            co_return accepted_response(req, **seen, true, svc.cfg.public_base_url);
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

    // The body: into the blob store as it arrives.
    std::optional<upload_body> body;
    if (boundary) {
        body.emplace(upload_body::as_multipart{*boundary});
    } else {
        auto name = query->find("filename");
        body.emplace(upload_body::as_raw{name != query->end() ? name->second : "upload"});
        if (name != query->end()) query->erase(name);
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

    auto got = co_await read_upload(svc, stream, buffer, hparser, *body);
    if (got.refused) {
        co_await discard_files(*body);
        if (!got.body_read) co_return refuse(got.refused->code, got.refused->message);
        co_return error_response(req, *got.refused);
    }
    auto accepted = co_await accept_body(svc, *body, *query, query_has_attempts, *query_attempts, idempotency_key);
    if (!accepted) {
        co_await discard_files(*body);
        co_return error_response(req, accepted.error());
    }
    // (A request with the same key may have won the race while this body was arriving: its jobs stand.)
    co_return accepted_response(req, accepted->jobs, accepted->replayed, svc.cfg.public_base_url);
}

}  // namespace quickthumb::http
