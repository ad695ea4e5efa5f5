#pragma once
// Internal to the http module: an upload's body as it arrives, with no I/O (unit-tested without a
// socket: tests/test_upload_body.cpp). It takes the body piece by piece, multipart (file parts
// and form fields) or raw (one file), sniffs each file's first bytes and refuses the whole upload
// at the first file that is not an image the engine decodes. A file's bytes are buffered between
// two pieces (at most one read chunk in all); the handler hands them to the blob store.
#include "quickthumb/blob_store.hpp"
#include "quickthumb/error.hpp"
#include "quickthumb/multipart.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::http {

// One file of an upload.
class received_file {
public:
    explicit received_file(std::string name) : filename(std::move(name)) {}
    void write(std::string_view data);
    // Once enough of the file has arrived to tell (or all of it, at_end): an error if it is not an
    // image the engine decodes. An empty file is left to the caller's own, clearer message.
    std::optional<error> check_format(bool at_end);

    // What arrived since the last take, for the blob store.
    std::string take_pending() { return std::exchange(pending_, {}); }
    std::int64_t bytes() const { return bytes_; }

    std::string filename;
    std::unique_ptr<blob_store::upload> blob;  // begun by the handler; removed with it unless committed
    std::optional<error> failure;              // the blob store's (the rest of the body is still read)

private:
    std::string pending_;
    std::int64_t bytes_ = 0;
    std::string head_;  // the first bytes, for check_format
    bool format_checked_ = false;
};

class upload_body {
public:
    static constexpr std::size_t max_files = 100;
    static constexpr std::size_t max_fields = 32;
    static constexpr std::size_t max_field_bytes = 1024;

    // A multipart/form-data body with this boundary.
    struct as_multipart {
        std::string boundary;
    };
    // A raw image body: one file, named `filename`.
    struct as_raw {
        std::string filename;
    };
    explicit upload_body(as_multipart m);
    explicit upload_body(as_raw r);
    upload_body(const upload_body&) = delete;  // the parser's callbacks hold `this`
    upload_body& operator=(const upload_body&) = delete;
    ~upload_body();

    // The next piece of the body. A refusal (malformed multipart, too many files or fields, a
    // file that is not an image) is kept in refused(); feeding more does nothing then.
    void feed(std::string_view data);
    // The body ended: an error if it was not whole (no closing boundary), held no file or an
    // empty one, or a raw one is not an image. The blob store's failures are the files' own.
    std::optional<error> finish();
    const std::optional<error>& refused() const { return refused_; }

    std::vector<std::unique_ptr<received_file>>& files() { return files_; }
    std::multimap<std::string, std::string>& fields() { return fields_; }

private:
    void refuse_unless_image(bool at_end);
    multipart::callbacks callbacks();

    std::unique_ptr<multipart::parser> parser_;  // none: a raw body
    std::vector<std::unique_ptr<received_file>> files_;
    std::multimap<std::string, std::string> fields_;
    std::optional<error> refused_;
    received_file* current_file_ = nullptr;
    std::string* current_field_ = nullptr;
};

// Keeps only a safe display name: no directories, no control characters, bounded length.
std::string clean_filename(std::string_view name);

}  // namespace quickthumb::http
