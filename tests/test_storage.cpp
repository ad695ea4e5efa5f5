#include "quickthumb/storage.hpp"
#include "support/server_process.hpp"

#include <catch2/catch.hpp>
#include "support/catch_result.hpp"
#include <fstream>

using namespace quickthumb;
namespace fs = std::filesystem;

TEST_CASE("storage: layout and atomic writes", "[storage]") {
    qt_test::temp_dir dir;
    storage s(dir.path() / "data");
    CHECK(fs::is_directory(dir.path() / "data" / "uploads"));
    CHECK(fs::is_directory(dir.path() / "data" / "thumbs"));
    CHECK(fs::is_directory(dir.path() / "data" / "tmp"));

    std::vector<std::uint8_t> bytes(100000, 7);
    auto target = s.thumb_path("abc", "thumb_1x1.jpg");
    REQUIRE(s.write_atomic(target, bytes));
    auto back = mapped_file::open(target);
    REQUIRE(back);
    CHECK(std::vector<std::uint8_t>(back->bytes().begin(), back->bytes().end()) == bytes);
    // Nothing but the final file is left beside it.
    int entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(s.thumb_dir("abc"))) ++entries;
    CHECK(entries == 1);

    // Overwriting replaces the content whole.
    std::vector<std::uint8_t> other(10, 1);
    REQUIRE(s.write_atomic(target, other));
    auto again = mapped_file::open(target);
    REQUIRE(again);
    CHECK(std::vector<std::uint8_t>(again->bytes().begin(), again->bytes().end()) == other);
}

TEST_CASE("storage: commit_upload moves a temp file into uploads/", "[storage]") {
    qt_test::temp_dir dir;
    storage s(dir.path());
    auto tmp = s.temp_path();
    CHECK(tmp.parent_path() == dir.path() / "tmp");
    { std::ofstream(tmp) << "hello"; }
    REQUIRE(s.commit_upload(tmp, "job1"));
    CHECK_FALSE(fs::exists(tmp));
    CHECK(fs::file_size(s.upload_path("job1")) == 5);
    s.remove_job_files("job1");
    CHECK_FALSE(fs::exists(s.upload_path("job1")));
}

TEST_CASE("storage: clean_temp removes leftovers / read errors are values", "[storage]") {
    qt_test::temp_dir dir;
    storage s(dir.path());
    { std::ofstream(s.temp_path()) << "half"; }
    s.clean_temp();
    CHECK(fs::is_empty(dir.path() / "tmp"));
    auto missing = mapped_file::open(dir.path() / "nope");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == errc::io_error);
    CHECK(mapped_file::open(dir.path()).error().message.find("is a directory") != std::string::npos);
    { std::ofstream(dir.path() / "empty"); }
    auto empty = mapped_file::open(dir.path() / "empty");
    REQUIRE(empty);
    CHECK(empty->bytes().empty());
    CHECK(io_failure(ENOSPC, "write").code == errc::storage_full);
}

TEST_CASE("storage: a write into an unwritable place fails cleanly", "[storage]") {
    qt_test::temp_dir dir;
    storage s(dir.path());
    // A regular file where the directory should be: creating the directory fails.
    { std::ofstream(dir.path() / "thumbs" / "blocked") << "x"; }
    std::vector<std::uint8_t> bytes(10, 1);
    auto r = s.write_atomic(s.thumb_path("blocked", "thumb_1x1.jpg"), bytes);
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error().message.empty());
}
