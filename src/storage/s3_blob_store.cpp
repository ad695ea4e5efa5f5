// The bucket blob store: uploads and thumbnails as objects in an S3-compatible bucket, through
// the S3 client (src/s3/), whose thread does all the I/O: callers on the network thread and on
// the image workers only wait.
//
// An upload is kept in memory up to one part; a larger one becomes a multipart upload under its
// final key, one part in flight while the next fills (the body's reader waits when that one is
// full too), so an upload holds at most two parts and a read chunk in memory, whatever its size. Nothing is visible under the key
// before commit_uploads completes it (a single PUT, or CompleteMultipartUpload); an upload that
// is dropped or discarded aborts its multipart upload, and clean_partial aborts what a crash left.
#include "quickthumb/blob_store.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/log.hpp"
#include "s3/client.hpp"
#include "s3/xml.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace quickthumb {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using s3::query_param;

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A thumbnail's Content-Type from its name's extension (thumb_WxH.jpg, .png, .webp).
std::string_view content_type_of(std::string_view name) {
    const auto dot = name.rfind('.');
    const auto f = dot == std::string_view::npos ? std::nullopt : parse_output_format(name.substr(dot + 1));
    return f ? mime_type(*f) : std::string_view("application/octet-stream");
}

// A part on its way to the bucket while the next one fills: its bytes, and its ETag or failure,
// set before `done` is signalled. Shared with the coroutine that sends it, so that an upload
// dropped meanwhile frees nothing that coroutine still uses.
struct part_in_flight {
    explicit part_in_flight(const asio::any_io_executor& ex) : done(ex, 1) {}
    std::vector<std::uint8_t> bytes;
    result<std::string> etag = std::string();
    asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
};

asio::awaitable<void> send_in_background(s3::client& c, s3::request req, std::shared_ptr<part_in_flight> p) {
    req.body = p->bytes;
    try {
        auto r = co_await c.send(req);
        if (!r)
            p->etag = r.error();
        else if (const auto etag = r->headers[bhttp::field::etag]; etag.empty())
            p->etag = error{errc::io_error, c.describe() + ": UploadPart " + req.key + ": no ETag in the answer"};
        else
            p->etag = std::string(etag);
    } catch (const std::exception& e) {  // a bug: the upload fails, and is told so below
        p->etag = error{errc::internal, "UploadPart " + req.key + ": " + e.what()};
    }
    // The channel holds one signal: this never waits.
    co_await p->done.async_send(boost::system::error_code{}, asio::as_tuple(asio::use_awaitable));
}

// A dropped upload's clean-up: its part in flight finished first (S3 may keep a part that
// arrives after the abort), then the abort.
asio::awaitable<void> abort_after(s3::client& c, std::shared_ptr<part_in_flight> p, s3::request abort) {
    if (p) co_await p->done.async_receive(asio::as_tuple(asio::use_awaitable));
    c.send_detached(std::move(abort));
}

class s3_upload final : public blob_store::upload {
public:
    s3_upload(s3::client& c, std::string id, std::string key, std::size_t part_size)
        : client_(c), id_(std::move(id)), key_(std::move(key)), part_size_(part_size) {}
    ~s3_upload() override {
        if (upload_id_.empty() || committed_) return;
        if (flight_)
            asio::co_spawn(client_.executor(), abort_after(client_, flight_, abort_request()), asio::detached);
        else
            client_.send_detached(abort_request());
    }

    const std::string& id() const noexcept override { return id_; }
    std::int64_t size() const noexcept override { return size_; }

    asio::awaitable<result<void>> append(std::span<const std::uint8_t> bytes) override {
        if (failure_) co_return *failure_;
        // Grown as a vector grows, but never past one part and the chunk that completes it.
        if (const auto need = buffer_.size() + bytes.size(); need > buffer_.capacity())
            buffer_.reserve(std::min(std::max(buffer_.capacity() * 2, need), std::max(need, part_size_ + bytes.size())));
        buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
        size_ += static_cast<std::int64_t>(bytes.size());
        while (buffer_.size() >= part_size_) {
            auto r = co_await start_part(part_size_);
            if (!r) {
                failure_ = r.error();
                co_return r;
            }
        }
        co_return result<void>{};
    }

    asio::awaitable<void> discard() override {
        if (!failure_) failure_ = error{errc::io_error, "the upload was discarded"};
        buffer_ = {};
        (void)co_await landed();  // its outcome no longer matters, but the abort must follow it
        if (committed_ || upload_id_.empty()) co_return;
        const auto req = abort_request();
        auto r = co_await client_.send(req);
        if (!r) log::warn("multipart upload not aborted", "key=" + key_ + " error=\"" + r.error().message + "\"");
        upload_id_.clear();
    }

    // The object made visible: one PUT, or the last part and the completion.
    asio::awaitable<result<void>> commit() {
        if (failure_) co_return *failure_;
        if (upload_id_.empty()) {
            auto put = s3::make_request("PutObject", bhttp::verb::put, key_);
            put.headers.push_back({"content-type", "application/octet-stream"});
            put.body = buffer_;
            auto r = co_await client_.send(put);
            if (!r) co_return r.error();
        } else {
            if (!buffer_.empty()) {
                auto r = co_await start_part(buffer_.size());
                if (!r) co_return r;
            }
            if (auto r = co_await landed(); !r) co_return r;
            std::string xml = "<CompleteMultipartUpload>";
            for (std::size_t i = 0; i < parts_.size(); ++i)
                xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + s3::xml_escape(parts_[i]) +
                       "</ETag></Part>";
            xml += "</CompleteMultipartUpload>";
            auto done = s3::make_request("CompleteMultipartUpload", bhttp::verb::post, key_, {{"uploadId", upload_id_}});
            done.headers.push_back({"content-type", "application/xml"});
            done.body = as_bytes(xml);
            auto r = co_await client_.send(done);
            if (!r) co_return r.error();
            // S3 may answer 200 and put an error in the body of a completion that failed late.
            if (auto code = s3::xml_text(r->text(), "Code"); code && r->text().find("<Error>") != std::string_view::npos)
                co_return error{errc::storage_unavailable,
                                client_.describe() + ": CompleteMultipartUpload " + key_ + ": " + *code};
        }
        committed_ = true;
        buffer_ = {};
        co_return result<void>{};
    }

private:
    s3::request abort_request() const {
        auto r = s3::make_request("AbortMultipartUpload", bhttp::verb::delete_, key_, {{"uploadId", upload_id_}});
        r.accept_status = {404};
        return r;
    }

    // Waits for the part in flight, if any, and records its ETag.
    asio::awaitable<result<void>> landed() {
        if (!flight_) co_return result<void>{};
        auto p = std::move(flight_);
        co_await p->done.async_receive(asio::as_tuple(asio::use_awaitable));
        if (!p->etag) co_return p->etag.error();
        parts_.push_back(std::move(*p->etag));
        co_return result<void>{};
    }

    // The first `n` buffered bytes leave as the next part (the multipart upload begun first)
    // once the part before has landed: one part in flight while the next fills, so an upload
    // holds at most two parts.
    asio::awaitable<result<void>> start_part(std::size_t n) {
        if (upload_id_.empty()) {
            auto create = s3::make_request("CreateMultipartUpload", bhttp::verb::post, key_, {{"uploads", ""}});
            create.headers.push_back({"content-type", "application/octet-stream"});
            auto r = co_await client_.send(create);
            if (!r) co_return r.error();
            auto id = s3::xml_text(r->text(), "UploadId");
            if (!id || id->empty())
                co_return error{errc::io_error, client_.describe() + ": CreateMultipartUpload " + key_ + ": no UploadId in the answer"};
            upload_id_ = std::move(*id);
        }
        if (auto r = co_await landed(); !r) co_return r;
        // The part's coroutine and its signal live on the client's thread, which outlives any
        // caller's executor.
        const auto ex = client_.executor();
        auto p = std::make_shared<part_in_flight>(ex);
        p->bytes = std::move(buffer_);
        buffer_.assign(p->bytes.begin() + static_cast<std::ptrdiff_t>(n), p->bytes.end());  // at most a chunk
        p->bytes.resize(n);
        auto part = s3::make_request("UploadPart", bhttp::verb::put, key_,
                                     {{"partNumber", std::to_string(parts_.size() + 1)}, {"uploadId", upload_id_}});
        flight_ = p;
        asio::co_spawn(ex, send_in_background(client_, std::move(part), std::move(p)), asio::detached);
        co_return result<void>{};
    }

    s3::client& client_;
    std::string id_;
    std::string key_;
    std::size_t part_size_;
    std::vector<std::uint8_t> buffer_;
    std::int64_t size_ = 0;
    std::string upload_id_;
    std::vector<std::string> parts_;  // ETags of the parts landed, part 1 first
    std::shared_ptr<part_in_flight> flight_;
    std::optional<error> failure_;
    bool committed_ = false;
};

class s3_blob_store final : public blob_store {
public:
    s3_blob_store(std::unique_ptr<s3::client> c, s3_store_options opts) : client_(std::move(c)), opts_(std::move(opts)) {}

    asio::awaitable<result<std::unique_ptr<upload>>> begin_upload(std::string id) override {
        auto key = upload_key(id);
        co_return std::unique_ptr<upload>(std::make_unique<s3_upload>(*client_, std::move(id), std::move(key), opts_.part_size));
    }

    asio::awaitable<result<void>> commit_uploads(std::vector<upload*> uploads) override {
        for (std::size_t i = 0; i < uploads.size(); ++i) {
            auto r = co_await static_cast<s3_upload*>(uploads[i])->commit();
            if (!r) {
                for (std::size_t k = 0; k < i; ++k) {
                    const auto key = upload_key(uploads[k]->id());
                    auto gone = co_await remove_object("DeleteObject", key);
                    if (!gone) log::warn("upload of a failed commit not removed", "error=\"" + gone.error().message + "\"");
                }
                co_return r;
            }
        }
        co_return result<void>{};
    }

    asio::awaitable<result<stored_bytes>> read_upload(std::string id) override {
        auto get = s3::make_request("GetObject", bhttp::verb::get, upload_key(id));
        get.body_limit = opts_.max_object;
        auto r = co_await client_->send(get);
        // A missing upload is an I/O failure, as a missing file is: the job's attempt is retried.
        if (!r && r.error().code == errc::not_found) co_return error{errc::io_error, r.error().message};
        if (!r) co_return r.error();
        co_return stored_bytes(std::move(r->body));
    }

    asio::awaitable<result<bool>> has_upload(std::string id) override {
        auto head = s3::make_request("HeadObject", bhttp::verb::head, upload_key(id));
        head.accept_status = {404};
        auto r = co_await client_->send(head);
        if (!r) co_return r.error();
        co_return r->status < 300;
    }

    asio::awaitable<result<void>> remove_upload(std::string id) override {
        const auto key = upload_key(id);
        co_return co_await remove_object("DeleteObject", key);
    }

    asio::awaitable<result<void>> put_thumb(std::string id, std::string name, std::span<const std::uint8_t> bytes) override {
        auto put = s3::make_request("PutObject", bhttp::verb::put, thumb_key(id, name));
        put.headers.push_back({"content-type", std::string(content_type_of(name))});
        // Outputs never change: whoever serves them from the bucket may cache them for good.
        put.headers.push_back({"cache-control", "public, max-age=31536000, immutable"});
        put.body = bytes;
        auto r = co_await client_->send(put);
        if (!r) co_return r.error();
        co_return result<void>{};
    }

    asio::awaitable<result<std::optional<served_file>>> open_thumb(std::string id, std::string name) override {
        auto get = s3::make_request("GetObject", bhttp::verb::get, thumb_key(id, name));
        get.body_limit = opts_.max_object;
        get.accept_status = {404};
        auto r = co_await client_->send(get);
        if (!r) co_return r.error();
        if (r->status == 404) co_return std::optional<served_file>{};
        co_return std::optional<served_file>(std::in_place, std::move(r->body));
    }

    asio::awaitable<result<bool>> has_thumb(std::string id, std::string name) override {
        auto head = s3::make_request("HeadObject", bhttp::verb::head, thumb_key(id, name));
        head.accept_status = {404};
        auto r = co_await client_->send(head);
        if (!r) co_return r.error();
        co_return r->status < 300;
    }

    std::optional<std::string> thumb_redirect(const std::string& id, const std::string& name,
                                              std::chrono::seconds expires) const override {
        return client_->presigned_get_url(thumb_key(id, name), expires);
    }

    asio::awaitable<result<void>> remove_thumb(std::string id, std::string name) override {
        const auto key = thumb_key(id, name);
        co_return co_await remove_object("DeleteObject", key);
    }

    asio::awaitable<result<void>> remove_thumbs(std::string id) override {
        const auto prefix = s3::object_key(client_->settings().location, "thumbs/" + id + "/");
        auto listed = co_await list_keys(prefix);
        if (!listed) co_return listed.error();
        for (const auto& o : *listed) {
            auto r = co_await remove_object("DeleteObject", o.key);
            if (!r) co_return r;
        }
        co_return result<void>{};
    }

    asio::awaitable<result<void>> remove_job(std::string id) override {
        auto a = co_await remove_upload(id);
        auto b = co_await remove_thumbs(id);
        co_return a ? b : a;
    }

    void clean_partial() override {
        const auto& where = client_->settings().location;
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
        std::optional<std::string> key_marker, id_marker;
        int aborted = 0;
        for (;;) {
            auto list = s3::make_request("ListMultipartUploads", bhttp::verb::get, "", {{"uploads", ""}, {"prefix", where.prefix}});
            if (key_marker) list.query.push_back({"key-marker", *key_marker});
            if (id_marker) list.query.push_back({"upload-id-marker", *id_marker});
            list.body_limit = 16 << 20;
            auto r = client_->send_blocking(list);
            if (!r) {
                // Some S3-compatible servers (s3rver) do not list multipart uploads.
                log::warn("multipart uploads left by an earlier run not looked for", "error=\"" + r.error().message + "\"");
                return;
            }
            auto page = s3::parse_list_uploads(r->text());
            for (const auto& u : page.uploads) {
                const auto at = s3::parse_iso8601(u.initiated);
                if (opts_.partial_age.count() > 0 && (!at || now - *at < opts_.partial_age.count())) continue;
                auto abort = s3::make_request("AbortMultipartUpload", bhttp::verb::delete_, u.key, {{"uploadId", u.upload_id}});
                abort.accept_status = {404};
                if (auto gone = client_->send_blocking(abort); !gone)
                    log::warn("multipart upload not aborted", "key=" + u.key + " error=\"" + gone.error().message + "\"");
                else
                    ++aborted;
            }
            if (!page.next_key_marker) break;
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        }
        if (aborted > 0) log::info("aborted multipart uploads left by an earlier run", "count=" + std::to_string(aborted));
    }

    asio::awaitable<result<std::vector<std::string>>> list_uploads(std::chrono::seconds older_than) override {
        const std::string prefix = s3::object_key(client_->settings().location, "uploads/");
        auto listed = co_await list_keys(prefix);
        if (!listed) co_return listed.error();
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
        std::vector<std::string> ids;
        for (const auto& o : *listed) {
            const auto id = o.key.substr(prefix.size());
            const auto at = s3::parse_iso8601(o.last_modified);
            if (!is_valid_job_id(id) || !at) continue;
            // Listings give whole seconds, which some servers round up (Swift): one second of slack.
            if (now + 1 - *at >= older_than.count()) ids.push_back(id);
        }
        co_return ids;
    }

    asio::awaitable<result<void>> probe() override {
        auto head = s3::make_request("HeadBucket", bhttp::verb::head, "");
        head.max_attempts = 1;  // readiness is asked often: one try says how it is now
        auto r = co_await client_->send(head);
        if (!r) co_return r.error();
        co_return result<void>{};
    }

private:
    std::string upload_key(const std::string& id) const {
        return s3::object_key(client_->settings().location, "uploads/" + id);
    }
    std::string thumb_key(const std::string& id, const std::string& name) const {
        return s3::object_key(client_->settings().location, "thumbs/" + id + "/" + name);
    }

    asio::awaitable<result<void>> remove_object(std::string_view op, const std::string& key) {
        auto del = s3::make_request(op, bhttp::verb::delete_, key);
        del.accept_status = {404};
        auto r = co_await client_->send(del);
        if (!r) co_return r.error();
        co_return result<void>{};
    }

    // Every object under `prefix`, page by page.
    asio::awaitable<result<std::vector<s3::listed_object>>> list_keys(const std::string& prefix) {
        std::vector<s3::listed_object> all;
        std::optional<std::string> token;
        for (;;) {
            auto list = s3::make_request("ListObjectsV2", bhttp::verb::get, "", {{"list-type", "2"}, {"prefix", prefix}});
            if (token) list.query.push_back({"continuation-token", *token});
            list.body_limit = 16 << 20;
            auto r = co_await client_->send(list);
            if (!r) co_return r.error();
            auto page = s3::parse_list_objects(r->text());
            for (auto& o : page.objects) all.push_back(std::move(o));
            if (!page.next_token) break;
            token = std::move(page.next_token);
        }
        co_return all;
    }

    std::unique_ptr<s3::client> client_;
    s3_store_options opts_;
};

}  // namespace

result<std::unique_ptr<blob_store>> open_s3_blob_store(
    const s3_store_options& opts, const std::function<std::optional<std::string>(std::string_view)>& env) {
    auto where = s3::parse_bucket_url(opts.bucket_url);
    if (!where) return where.error();
    auto settings = s3::settings_from_env(std::move(*where), opts.path_style, env);
    if (!settings) return settings.error();
    s3::client_options co;
    co.request_timeout = opts.timeout;
    co.connect_timeout = std::min(opts.timeout, std::chrono::milliseconds(5000));
    co.max_attempts = opts.max_attempts;
    co.observe = opts.observe;
    std::unique_ptr<s3::client> c;
    try {
        c = std::make_unique<s3::client>(std::move(*settings), co);
    } catch (const std::exception& e) {  // the CA bundle (AWS_CA_BUNDLE) cannot be read
        return error{errc::invalid_option, std::string("--storage: cannot set up TLS: ") + e.what()};
    }
    // One listing proves the endpoint answers, the keys are right and the bucket is there; its
    // body names S3's reason when not (a HEAD's answer has none).
    auto check = s3::make_request("ListObjectsV2", bhttp::verb::get, "", {{"list-type", "2"}, {"max-keys", "1"}});
    check.max_attempts = 2;
    auto r = c->send_blocking(check);
    if (!r) {
        std::string hint;
        const auto& m = r.error().message;
        if (m.find("NoSuchBucket") != std::string::npos || m.find(" 404") != std::string::npos)
            hint = " (the bucket does not exist: create it first)";
        else if (m.find("SignatureDoesNotMatch") != std::string::npos || m.find("InvalidAccessKeyId") != std::string::npos ||
                 m.find("AccessDenied") != std::string::npos || m.find(" 403") != std::string::npos)
            hint = " (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)";
        return error{r.error().code, "--storage: cannot use " + c->describe() + ": " + m + hint};
    }
    return std::unique_ptr<blob_store>(std::make_unique<s3_blob_store>(std::move(c), opts));
}

}  // namespace quickthumb
