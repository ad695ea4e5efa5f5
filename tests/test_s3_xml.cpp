// The pieces of S3's XML answers the bucket store reads, on bodies as AWS documents them.
#include "s3/xml.hpp"

#include <catch2/catch.hpp>

using namespace quickthumb::s3;

TEST_CASE("s3 xml: an error body's code and message, entities decoded", "[s3][unit]") {
    const auto e = parse_error(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match &amp; &lt;so&gt; &#x41;&#66;</Message>"
        "<RequestId>4442587FB7D0A2F9</RequestId></Error>");
    CHECK(e.code == "SignatureDoesNotMatch");
    CHECK(e.message == "The request signature we calculated does not match & <so> AB");
    CHECK(parse_error("").code.empty());
    CHECK(parse_error("<html><body>Bad Gateway</body></html>").code.empty());
    // <CodeX> is not <Code>; attributes are allowed; a self-closing element is empty.
    CHECK(xml_text("<CodeX>a</CodeX><Code attr=\"1\">b</Code>", "Code") == "b");
    CHECK(xml_text("<Code/>", "Code") == "");
    CHECK_FALSE(xml_text("<Code>unterminated", "Code"));
}

TEST_CASE("s3 xml: a ListObjectsV2 page and its continuation", "[s3][unit]") {
    const std::string page =
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>uploads/</Prefix>"
        "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
        "<Contents><Key>uploads/a&amp;b</Key><LastModified>2026-12-06T21:45:11.000Z</LastModified><Size>3</Size></Contents>"
        "<Contents><Key>uploads/c</Key><LastModified>2026-12-06T21:45:12.123Z</LastModified></Contents>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>";
    const auto l = parse_list_objects(page);
    REQUIRE(l.objects.size() == 2);
    CHECK(l.objects[0].key == "uploads/a&b");
    CHECK(l.objects[1].last_modified == "2026-12-06T21:45:12.123Z");
    CHECK(l.next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    CHECK_FALSE(parse_list_objects("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>").next_token);
    CHECK(parse_list_objects("<ListBucketResult></ListBucketResult>").objects.empty());
}

TEST_CASE("s3 xml: a ListMultipartUploads page", "[s3][unit]") {
    const auto l = parse_list_uploads(
        "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>true</IsTruncated>"
        "<NextKeyMarker>uploads/x</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>"
        "<Upload><Key>uploads/w</Key><UploadId>id1</UploadId><Initiated>2026-12-06T00:00:00.000Z</Initiated></Upload>"
        "<Upload><Key>uploads/x</Key><UploadId>id2</UploadId><Initiated>2026-12-06T00:00:01.000Z</Initiated></Upload>"
        "</ListMultipartUploadsResult>");
    REQUIRE(l.uploads.size() == 2);
    CHECK(l.uploads[1].key == "uploads/x");
    CHECK(l.uploads[1].upload_id == "id2");
    CHECK(l.next_key_marker == "uploads/x");
    CHECK(l.next_upload_id_marker == "id2");
}

TEST_CASE("s3 xml: ISO 8601 times as S3 writes them, and escaping", "[s3][unit]") {
    CHECK(parse_iso8601("1970-01-01T00:00:00.000Z") == 0);
    CHECK(parse_iso8601("2026-12-06T21:45:11.000Z") == 1796593511);
    CHECK(parse_iso8601("2026-12-06T21:45:11Z") == 1796593511);
    CHECK_FALSE(parse_iso8601("2026-12-06 21:45:11"));
    CHECK_FALSE(parse_iso8601("2026-13-06T21:45:11Z"));
    CHECK_FALSE(parse_iso8601("2026-12-06T21:45:11.000+01:00"));
    CHECK(xml_escape("\"a\" & <b>'") == "&quot;a&quot; &amp; &lt;b&gt;&apos;");
}
