#include "upload_body.hpp"

#include "quickthumb/image.hpp"

namespace quickthumb::http {

namespace {

// image::sniff decides from at most this much (an SVG's XML prolog is the longest it reads).
constexpr std::size_t sniff_bytes = 1024;

bool is_file_field(std::string_view name) { return name == "file" || name == "files" || name == "file[]"; }

}  // namespace

void received_file::write(std::string_view data) {
    if (head_.size() < sniff_bytes) head_.append(data.substr(0, sniff_bytes - head_.size()));
    bytes_ += static_cast<std::int64_t>(data.size());
    if (!failure) pending_.append(data);
}

std::optional<error> received_file::check_format(bool at_end) {
    if (format_checked_ || (!at_end && head_.size() < sniff_bytes) || bytes_ == 0) return std::nullopt;
    format_checked_ = true;
    const auto f = image::sniff(std::span(reinterpret_cast<const std::uint8_t*>(head_.data()), head_.size()));
    head_ = {};
    auto refused = image::unsupported_input(f);
    if (refused) refused->message = "'" + filename + "': " + refused->message;
    return refused;
}

std::string clean_filename(std::string_view name) {
    if (auto slash = name.find_last_of("/\\"); slash != std::string_view::npos) name.remove_prefix(slash + 1);
    std::string out;
    for (char c : name)
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
    if (out.size() > 255) out.resize(255);
    return out.empty() ? "upload" : out;
}

upload_body::upload_body(as_multipart m)
    : parser_(std::make_unique<multipart::parser>(std::move(m.boundary), callbacks())) {}

upload_body::upload_body(as_raw r) {
    files_.push_back(std::make_unique<received_file>(clean_filename(r.filename)));
    current_file_ = files_.back().get();
}

upload_body::~upload_body() = default;

void upload_body::feed(std::string_view data) {
    if (refused_) return;
    if (!parser_) {
        current_file_->write(data);
        refuse_unless_image(false);
        return;
    }
    if (parser_->feed(data)) {
        if (!refused_) refused_ = error{errc::bad_request, "malformed multipart body: " + parser_->error_message()};
    }
}

std::optional<error> upload_body::finish() {
    if (refused_) return refused_;
    if (!parser_) {
        refuse_unless_image(true);  // a raw body shorter than sniff_bytes
        if (refused_) return refused_;
    } else if (!parser_->started()) {
        return error{errc::bad_request, "malformed multipart body: the boundary from Content-Type never appears in it"};
    } else if (!parser_->done()) {
        return error{errc::bad_request, "malformed multipart body: it ended before the closing boundary"};
    }
    if (files_.empty()) return error{errc::bad_request, "no image in the request: send it as a multipart field named 'file'"};
    for (const auto& f : files_) {
        if (f->failure) return f->failure;
        if (f->bytes() == 0) return error{errc::bad_request, "the file '" + f->filename + "' is empty"};
    }
    return std::nullopt;
}

// One file that is not an image refuses the whole request: simpler for a client than a partial
// success, and nothing has been stored yet.
void upload_body::refuse_unless_image(bool at_end) {
    if (refused_ || !current_file_) return;
    if (auto e = current_file_->check_format(at_end)) {
        if (files_.size() > 1) e->message += "; the whole request is refused, no job was created";
        refused_ = std::move(e);
        current_file_ = nullptr;
    }
}

multipart::callbacks upload_body::callbacks() {
    return {
        [this](const multipart::part_header& h) {
            current_file_ = nullptr;
            current_field_ = nullptr;
            if (refused_) return;
            if (is_file_field(h.name)) {
                if (files_.size() >= max_files) {
                    refused_ = error{errc::bad_request,
                                     "too many files in one upload (at most " + std::to_string(max_files) + ")"};
                    return;
                }
                files_.push_back(std::make_unique<received_file>(clean_filename(h.filename.value_or("upload"))));
                current_file_ = files_.back().get();
            } else {
                if (fields_.size() >= max_fields) {
                    refused_ = error{errc::bad_request, "too many form fields"};
                    return;
                }
                current_field_ = &fields_.emplace(h.name, std::string())->second;
            }
        },
        [this](std::string_view data) {
            if (current_file_) {
                current_file_->write(data);
                refuse_unless_image(false);
            } else if (current_field_) {
                if (current_field_->size() + data.size() > max_field_bytes) {
                    refused_ = error{errc::bad_request,
                                     "a form field is longer than " + std::to_string(max_field_bytes) + " bytes"};
                    current_field_ = nullptr;
                    return;
                }
                current_field_->append(data);
            }
        },
        [this] {
            if (current_file_) refuse_unless_image(true);
            current_file_ = nullptr;
            current_field_ = nullptr;
        },
    };
}

}  // namespace quickthumb::http
