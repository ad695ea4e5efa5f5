// The blob store's interface, against the backend tests/support/stores.hpp opens, then what only
// the file store promises (its layout, its leftovers) and the file primitives under it.
#include "quickthumb/blob_store.hpp"
#include "support/eventually.hpp"
#include "support/server_process.hpp"
#include "support/s3_process.hpp"
#include "support/stores.hpp"

#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <algorithm>
#include <fstream>
#include <unistd.h>

using namespace quickthumb;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A bucket case skips, saying why, where Swift is not installed.
#define QT_BACKEND_AVAILABLE(bucket)                                                            \
    do {                                                                                         \
        if ((bucket) && !qt_test::swift_installed()) {                                           \
            WARN("Swift is not installed: the bucket backend is skipped (scripts/setup --test)");  \
            return;                                                                              \
        }                                                                                        \
    } while (false)

namespace {

std::span<const std::uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string text_of(const stored_bytes& b) { return std::string(b.bytes().begin(), b.bytes().end()); }

// A served thumbnail's bytes, from its descriptor (the files) or its buffer (the bucket).
std::string served_text(served_file& f) {
    if (!f.has_descriptor()) {
        auto b = f.take_bytes();
        return std::string(b.begin(), b.end());
    }
    std::string out(f.size(), '\0');
    const int fd = f.release();
    const auto n = ::pread(fd, out.data(), out.size(), 0);
    ::close(fd);
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

// The store the interface cases run against: the data directory's files, or a bucket on a real
// S3-compatible server (Swift) beside the test.
struct fixture {
    explicit fixture(bool bucket = false) {
        if (bucket) {
            s3.emplace(dir.path() / "s3");
            owner = qt_test::open_bucket_blobs(*s3);
        } else {
            owner = qt_test::open_blobs(dir.path() / "data");
        }
    }
    qt_test::temp_dir dir;
    std::optional<qt_test::s3_process> s3;
    std::unique_ptr<blob_store> owner;
    blob_store& blobs() { return *owner; }
    // What an upload sends: `parts` appended one after the other, then committed as `id`.
    result<void> store_upload(const std::string& id, const std::vector<std::string>& parts) {
        auto up = qt_test::wait_now(blobs().begin_upload(id));
        if (!up) return up.error();
        for (const auto& p : parts)
            if (auto r = qt_test::wait_now((*up)->append(as_bytes(p))); !r) return r;
        return qt_test::wait_now(blobs().commit_uploads({up->get()}));
    }
};

}  // namespace

TEST_CASE("blob store: an upload is seen whole under its id only once committed", "[storage]") {
    const bool bucket = GENERATE(false, true);
    QT_BACKEND_AVAILABLE(bucket);
    fixture f(bucket);
    const std::string id = new_job_id(), other = new_job_id();
    auto up = qt_test::wait_now(f.blobs().begin_upload(id));
    REQUIRE(up);
    REQUIRE(qt_test::wait_now((*up)->append(as_bytes("hello, "))));
    REQUIRE(qt_test::wait_now((*up)->append(as_bytes("world"))));
    CHECK((*up)->size() == 12);
    CHECK_FALSE(qt_test::read_now(f.blobs().has_upload(id)));  // not before the commit
    REQUIRE(qt_test::wait_now(f.blobs().commit_uploads({up->get()})));
    CHECK(qt_test::read_now(f.blobs().has_upload(id)));
    CHECK(text_of(qt_test::read_now(f.blobs().read_upload(id))) == "hello, world");
    CHECK_FALSE(qt_test::read_now(f.blobs().has_upload(other)));
    auto missing = qt_test::wait_now(f.blobs().read_upload(other));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == errc::io_error);

    // Several at once, each under its own id; an empty one is an empty blob.
    const std::string ida = new_job_id(), idb = new_job_id();
    auto a = qt_test::wait_now(f.blobs().begin_upload(ida));
    auto b = qt_test::wait_now(f.blobs().begin_upload(idb));
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(qt_test::wait_now((*a)->append(as_bytes("first"))));
    REQUIRE(qt_test::wait_now(f.blobs().commit_uploads({a->get(), b->get()})));
    CHECK(text_of(qt_test::read_now(f.blobs().read_upload(ida))) == "first");
    CHECK(qt_test::read_now(f.blobs().read_upload(idb)).bytes().empty());

    // Recovery's list: what was stored before a moment; nothing here is an hour old.
    const auto listed = qt_test::read_now(f.blobs().list_uploads(std::chrono::seconds(0)));
    CHECK(std::is_permutation(listed.begin(), listed.end(), std::vector<std::string>{id, ida, idb}.begin()));
    CHECK(listed.size() == 3);
    CHECK(qt_test::read_now(f.blobs().list_uploads(std::chrono::seconds(3600))).empty());

    REQUIRE(qt_test::wait_now(f.blobs().remove_upload(id)));
    CHECK_FALSE(qt_test::read_now(f.blobs().has_upload(id)));
    REQUIRE(qt_test::wait_now(f.blobs().remove_upload(id)));  // already gone: fine
}

TEST_CASE("blob store: thumbnails are stored, served, replaced whole and removed", "[storage]") {
    const bool bucket = GENERATE(false, true);
    QT_BACKEND_AVAILABLE(bucket);
    fixture f(bucket);
    const std::string id = new_job_id();
    const std::string big(100000, 'x');
    REQUIRE(qt_test::wait_now(f.blobs().put_thumb(id, "thumb_1x1.jpg", as_bytes(big))));
    REQUIRE(qt_test::wait_now(f.blobs().put_thumb(id, "thumb_2x2.jpg", as_bytes("two"))));
    auto served = qt_test::read_now(f.blobs().open_thumb(id, "thumb_1x1.jpg"));
    REQUIRE(served);
    CHECK(served->size() == big.size());
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(id, "thumb_3x3.jpg")));
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(new_job_id(), "thumb_1x1.jpg")));

    // Replacing gives the new bytes whole.
    REQUIRE(qt_test::wait_now(f.blobs().put_thumb(id, "thumb_1x1.jpg", as_bytes("short"))));
    auto again = qt_test::read_now(f.blobs().open_thumb(id, "thumb_1x1.jpg"));
    REQUIRE(again);
    CHECK(again->size() == 5);
    CHECK(served_text(*again) == "short");
    CHECK(qt_test::read_now(f.blobs().has_thumb(id, "thumb_1x1.jpg")));
    CHECK_FALSE(qt_test::read_now(f.blobs().has_thumb(id, "thumb_4x4.jpg")));

    REQUIRE(qt_test::wait_now(f.blobs().remove_thumb(id, "thumb_2x2.jpg")));
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(id, "thumb_2x2.jpg")));
    CHECK(qt_test::read_now(f.blobs().open_thumb(id, "thumb_1x1.jpg")));
    REQUIRE(qt_test::wait_now(f.blobs().remove_thumbs(id)));
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(id, "thumb_1x1.jpg")));
    REQUIRE(qt_test::wait_now(f.blobs().remove_thumbs(id)));  // none left: fine

    // A job's upload and thumbnails go together.
    REQUIRE(f.store_upload(id, {"src"}));
    REQUIRE(qt_test::wait_now(f.blobs().put_thumb(id, "thumb_1x1.jpg", as_bytes("t"))));
    REQUIRE(qt_test::wait_now(f.blobs().remove_job(id)));
    CHECK_FALSE(qt_test::read_now(f.blobs().has_upload(id)));
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(id, "thumb_1x1.jpg")));
    REQUIRE(qt_test::wait_now(f.blobs().probe()));
}

TEST_CASE("file blob store: layout, and what an unfinished upload leaves", "[storage]") {
    fixture f;
    const fs::path root = f.dir.path() / "data";
    CHECK(fs::is_directory(root / "uploads"));
    CHECK(fs::is_directory(root / "thumbs"));
    CHECK(fs::is_directory(root / "tmp"));
    const std::string id = new_job_id();
    REQUIRE(f.store_upload(id, {"abc", "def"}));
    CHECK(fs::file_size(root / "uploads" / id) == 6);
    REQUIRE(qt_test::wait_now(f.blobs().put_thumb(id, "thumb_1x1.jpg", as_bytes("t"))));
    int entries = 0;  // nothing but the final file beside it
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(root / "thumbs" / id)) ++entries;
    CHECK(entries == 1);

    {
        // Dropped before its commit (a refused or broken request): its bytes go.
        auto up = qt_test::wait_now(f.blobs().begin_upload(new_job_id()));
        REQUIRE(up);
        REQUIRE(qt_test::wait_now((*up)->append(as_bytes("half"))));
        CHECK_FALSE(fs::is_empty(root / "tmp"));
    }
    qt_test::eventually([&] { return fs::is_empty(root / "tmp"); }, 10s, "the dropped upload's file was removed");

    // A previous run's leftovers (a kill mid-upload) go at start-up.
    { std::ofstream(root / "tmp" / "left.part") << "half"; }
    f.blobs().clean_partial();
    CHECK(fs::is_empty(root / "tmp"));

    // A regular file where a job's thumbnail directory should be: the write fails as a value.
    const std::string blocked = new_job_id();
    { std::ofstream(root / "thumbs" / blocked) << "x"; }
    auto r = qt_test::wait_now(f.blobs().put_thumb(blocked, "thumb_1x1.jpg", as_bytes("t")));
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error().message.empty());
    // A symlink is not followed when serving.
    fs::create_directories(root / "thumbs" / id);
    fs::create_symlink(root / "uploads" / id, root / "thumbs" / id / "thumb_9x9.jpg");
    CHECK_FALSE(qt_test::read_now(f.blobs().open_thumb(id, "thumb_9x9.jpg")));
}

TEST_CASE("file primitives: mapped reads and their errors are values", "[storage]") {
    qt_test::temp_dir dir;
    auto missing = mapped_file::open(dir.path() / "nope");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == errc::io_error);
    CHECK(mapped_file::open(dir.path()).error().message.find("is a directory") != std::string::npos);
    { std::ofstream(dir.path() / "empty"); }
    auto empty = mapped_file::open(dir.path() / "empty");
    REQUIRE(empty);
    CHECK(empty->bytes().empty());
    CHECK(io_failure(ENOSPC, "write").code == errc::storage_full);
    CHECK(io_failure(EROFS, "write").code == errc::storage_readonly);
}
