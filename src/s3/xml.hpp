#pragma once
// The few pieces of S3's XML answers the service reads (an error's Code and Message, a listing's
// keys, a multipart upload's id): S3's answers are flat and machine-written, so a scan for
// <Tag>...</Tag> is enough and needs no XML library. Pure, tested without a server.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::s3 {

// The text of the first <tag>...</tag> in xml, entities decoded; nullopt when there is none.
std::optional<std::string> xml_text(std::string_view xml, std::string_view tag);

// Each <tag>...</tag> element's inner XML, in order (for <Contents>, <Upload>, <Part>).
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag);

// &, <, >, " and ' escaped, for the bodies the service writes (CompleteMultipartUpload).
std::string xml_escape(std::string_view text);

// S3's error body: <Error><Code>NoSuchKey</Code><Message>...</Message></Error>.
struct error_body {
    std::string code;     // "" when the body has none (a HEAD, a proxy's HTML page)
    std::string message;
};
error_body parse_error(std::string_view xml);

struct listed_object {
    std::string key;
    std::string last_modified;  // ISO 8601, "2026-12-06T21:45:11.000Z"
};
struct object_listing {
    std::vector<listed_object> objects;
    std::optional<std::string> next_token;  // NextContinuationToken when IsTruncated
};
object_listing parse_list_objects(std::string_view xml);

struct listed_upload {
    std::string key;
    std::string upload_id;
    std::string initiated;  // ISO 8601
};
struct upload_listing {
    std::vector<listed_upload> uploads;
    std::optional<std::string> next_key_marker, next_upload_id_marker;  // when IsTruncated
};
upload_listing parse_list_uploads(std::string_view xml);

// Seconds since the epoch of an ISO 8601 UTC time as S3 writes it ("2026-12-06T21:45:11.000Z"),
// or nullopt.
std::optional<long long> parse_iso8601(std::string_view t);

}  // namespace quickthumb::s3
