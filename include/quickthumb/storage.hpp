#pragma once
// The data directory's layout and its file operations. Every file that others may read appears
// atomically: written under a temporary name, flushed, then renamed into place.
//   <data>/quickthumb.db         SQLite
//   <data>/uploads/<id>          the uploaded bytes
//   <data>/thumbs/<id>/<name>    the outputs
//   <data>/tmp/                  uploads being received and outputs being written
#include "quickthumb/error.hpp"
#include "quickthumb/file_io.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace quickthumb {

class storage {
public:
    // Creates the directories. Throws std::filesystem::filesystem_error when it cannot (fatal).
    explicit storage(std::filesystem::path data_dir);

    const std::filesystem::path& root() const noexcept { return root_; }
    std::filesystem::path db_path() const { return root_ / "quickthumb.db"; }
    std::filesystem::path upload_path(const std::string& id) const { return root_ / "uploads" / id; }
    std::filesystem::path thumb_dir(const std::string& id) const { return root_ / "thumbs" / id; }
    std::filesystem::path thumb_path(const std::string& id, const std::string& name) const {
        return thumb_dir(id) / name;
    }
    // A fresh, unique path under tmp/ (nothing is created).
    std::filesystem::path temp_path() const;

    // Removes leftovers of a previous run under tmp/ (half-received uploads, half-written thumbs).
    void clean_temp() const;

    // Writes bytes to `final_path` atomically and durably (temp file, fsync, rename, fsync dir).
    result<void> write_atomic(const std::filesystem::path& final_path, std::span<const std::uint8_t> bytes) const;

    // Moves a fully received temp file to uploads/<id>, durably (fsync file, rename, fsync dir).
    result<void> commit_upload(const std::filesystem::path& temp, const std::string& id) const;

    // Whether the job's upload is still stored (a retry needs it).
    bool has_upload(const std::string& id) const;
    // Deletes a job's upload only (its thumbnails are made and recorded).
    void remove_upload(const std::string& id) const;
    // Deletes a job's upload and thumbnails (missing files are fine).
    void remove_job_files(const std::string& id) const;
    // Deletes one of a job's thumbnails (a failed attempt's, written before the failure).
    void remove_thumb(const std::string& id, const std::string& name) const;
    // Deletes a job's thumbnails only (a cancelled or interrupted attempt's outputs).
    void remove_thumbs(const std::string& id) const;

private:
    std::filesystem::path root_;
};

}  // namespace quickthumb
