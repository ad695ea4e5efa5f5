// Signature Version 4 against AWS's published vectors: the Signature V4 test suite (service
// "service", 2015-08-30) and the worked examples of the S3 API reference ("Examples: Signature
// Calculations", 2013-05-24). The suite's normalize-path cases are left out: S3 signs the key as
// it is, without folding "." and "..".
#include "s3/sigv4.hpp"

#include <catch2/catch.hpp>

using namespace quickthumb::s3;
using namespace std::chrono;

namespace {

const std::string empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
    return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

// The suite's requests: host example.amazonaws.com, x-amz-date 20150830T123600Z.
struct suite_case {
    const char* name;
    const char* method;
    const char* path;
    std::vector<query_param> query;
    std::vector<header_field> extra_headers;
    const char* body;
    const char* signed_headers;
    const char* signature;
};

const credentials suite_keys{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const char* const suite_token =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YU"
    "uwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8Y"
    "QcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICC"
    "R/oLxBA==";
const char* const unreserved_chars = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::vector<suite_case> suite_cases() {
    const char* hd = "host;x-amz-date";
    const char* hd1 = "host;my-header1;x-amz-date";
    return {
        {"get-vanilla", "GET", "/", {}, {}, "", hd,
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        {"get-vanilla-empty-query-key", "GET", "/", {{"Param1", "value1"}}, {}, "", hd,
         "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
        {"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, {}, "", hd,
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
        {"get-vanilla-query-unreserved", "GET", "/", {{unreserved_chars, unreserved_chars}}, {}, "", hd,
         "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
        {"get-vanilla-utf8-query", "GET", "/", {{"\xe1\x88\xb4", "bar"}}, {}, "", hd,
         "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
        {"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}, {}, "",
         hd, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
        {"get-utf8", "GET", "/\xe1\x88\xb4", {}, {}, "", hd,
         "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
        // The repeated header, given three times: its values joined in order.
        {"get-header-key-duplicate", "GET", "/", {},
         {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, "", hd1,
         "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
        {"get-header-value-order", "GET", "/", {},
         {{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
         "", hd1, "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
        {"get-header-value-trim", "GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, "",
         "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
        {"post-vanilla", "POST", "/", {}, {}, "", hd,
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        {"post-vanilla-query", "POST", "/", {{"Param1", "value1"}}, {}, "", hd,
         "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
        {"post-vanilla-query-nonunreserved", "POST", "/", {{"@#$%^", ""}, {"+", "/,?><`\";:\\|][{}"}}, {}, "", hd,
         "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e"},
        {"post-header-key-sort", "POST", "/", {}, {{"My-Header1", "value1"}}, "", hd1,
         "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
        {"post-header-value-case", "POST", "/", {}, {{"My-Header1", "VALUE1"}}, "", hd1,
         "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
        {"post-sts-header-before", "POST", "/", {}, {{"X-Amz-Security-Token", suite_token}}, "",
         "host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
        {"post-x-www-form-urlencoded", "POST", "/", {}, {{"Content-Type", "application/x-www-form-urlencoded"}},
         "Param1=value1", "content-type;host;x-amz-date",
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
        {"post-x-www-form-urlencoded-parameters", "POST", "/", {},
         {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, "Param1=value1",
         "content-type;host;x-amz-date", "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
    };
}

// The S3 examples: bucket examplebucket, at 2013-05-24T00:00:00Z.
const credentials s3_keys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const std::string s3_host = "examplebucket.s3.amazonaws.com";

std::string signature_of(const std::string& auth) { return auth.substr(auth.rfind('=') + 1); }

std::string header(const request_to_sign& r, const std::string& name) {
    for (const auto& h : r.headers)
        if (h.name == name) return h.value;
    return {};
}

}  // namespace

TEST_CASE("SigV4: AWS's test suite, each request signed as AWS signed it", "[s3]") {
    for (const auto& c : suite_cases()) {
        DYNAMIC_SECTION(c.name) {
            request_to_sign r;
            r.method = c.method;
            r.path = c.path;
            r.query = c.query;
            r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
            r.headers.insert(r.headers.end(), c.extra_headers.begin(), c.extra_headers.end());
            r.payload_hash = sha256_hex(std::string_view(c.body));
            const auto auth = authorization(suite_keys, "us-east-1", "service", "20150830T123600Z", r);
            CHECK(auth == std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                                      "SignedHeaders=") +
                              c.signed_headers + ", Signature=" + c.signature);
        }
    }
}

TEST_CASE("SigV4: the suite's canonical request and string to sign, step by step", "[s3]") {
    // get-vanilla-query-order-key (its *.creq and *.sts files).
    request_to_sign r{"GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}},
                      {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, empty_sha256};
    const auto canonical = canonical_request(r);
    CHECK(canonical.request ==
          "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
          "host;x-amz-date\n" +
              empty_sha256);
    const auto scope = credential_scope("20150830T123600Z", "us-east-1", "service");
    CHECK(scope == "20150830/us-east-1/service/aws4_request");
    CHECK(string_to_sign("20150830T123600Z", scope, canonical.request) ==
          "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
          "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89");
}

TEST_CASE("SigV4: the S3 reference's GET Object, with a range", "[s3]") {
    request_to_sign r{"GET", "/test.txt", {}, {{"Host", s3_host}, {"Range", "bytes=0-9"}}, empty_sha256};
    sign_s3(s3_keys, "us-east-1", utc(2013, 5, 24), r);
    CHECK(header(r, "x-amz-date") == "20130524T000000Z");
    CHECK(header(r, "x-amz-content-sha256") == empty_sha256);
    CHECK(header(r, "authorization") ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("SigV4: the S3 reference's PUT Object: a key with '$', a body, a Date header", "[s3]") {
    const std::string body = "Welcome to Amazon S3.";
    request_to_sign r{"PUT",
                      "/test$file.text",
                      {},
                      {{"Host", s3_host},
                       {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                       {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                      sha256_hex(std::string_view(body))};
    CHECK(r.payload_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    sign_s3(s3_keys, "us-east-1", utc(2013, 5, 24), r);
    const auto auth = header(r, "authorization");
    CHECK(auth.find("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,") !=
          std::string::npos);
    CHECK(signature_of(auth) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("SigV4: the S3 reference's GET Bucket lifecycle and list objects", "[s3]") {
    request_to_sign lifecycle{"GET", "/", {{"lifecycle", ""}}, {{"Host", s3_host}}, empty_sha256};
    sign_s3(s3_keys, "us-east-1", utc(2013, 5, 24), lifecycle);
    CHECK(signature_of(header(lifecycle, "authorization")) ==
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");

    request_to_sign list{"GET", "/", {{"max-keys", "2"}, {"prefix", "J"}}, {{"Host", s3_host}}, empty_sha256};
    sign_s3(s3_keys, "us-east-1", utc(2013, 5, 24), list);
    CHECK(signature_of(header(list, "authorization")) ==
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST_CASE("SigV4: the S3 reference's presigned URL", "[s3]") {
    request_to_sign r{"GET", "/test.txt", {}, {{"Host", s3_host}}, ""};
    CHECK(presigned_query(s3_keys, "us-east-1", utc(2013, 5, 24), seconds(86400), r) ==
          "X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
          "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
          "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST_CASE("SigV4: temporary credentials sign their session token", "[s3]") {
    credentials temporary = s3_keys;
    temporary.session_token = "token/with+chars=";
    request_to_sign with{"HEAD", "/key.pdf", {}, {{"Host", s3_host}}, empty_sha256};
    sign_s3(temporary, "us-east-1", utc(2013, 5, 24), with);
    CHECK(header(with, "x-amz-security-token") == "token/with+chars=");
    const auto auth = header(with, "authorization");
    CHECK(auth.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
          std::string::npos);

    // The same request without the token is signed differently: the token is covered.
    request_to_sign without{"HEAD", "/key.pdf", {}, {{"Host", s3_host}}, empty_sha256};
    sign_s3(s3_keys, "us-east-1", utc(2013, 5, 24), without);
    CHECK(signature_of(header(without, "authorization")) != signature_of(auth));

    const auto query = presigned_query(temporary, "us-east-1", utc(2013, 5, 24), seconds(60),
                                       request_to_sign{"GET", "/key.pdf", {}, {{"Host", s3_host}}, ""});
    CHECK(query.find("&X-Amz-Security-Token=token%2Fwith%2Bchars%3D&") != std::string::npos);
}

TEST_CASE("SigV4: keys are encoded once, '/' kept, and dates are UTC", "[s3]") {
    CHECK(uri_encode("photos/a b/\xc3\xbc+x.png", true) == "photos/a%20b/%C3%BC%2Bx.png");
    CHECK(uri_encode("a/b", false) == "a%2Fb");
    CHECK(uri_encode("%41", true) == "%2541");  // already-encoded input is data, not encoding
    CHECK(amz_date(utc(2026, 12, 4, 5, 6, 7)) == "20261204T050607Z");
    CHECK(amz_date(utc(2026, 12, 4, 5, 6, 7) + milliseconds(999)) == "20261204T050607Z");
}
