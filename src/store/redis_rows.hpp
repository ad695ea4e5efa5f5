#pragma once
// A job as the Redis store keeps it: the fields of its hash (job:<id>), as flat field/value
// strings. Pure: no I/O, so the mapping is tested without a server.
#include "quickthumb/job.hpp"
#include "quickthumb/resp.hpp"

#include <string>
#include <utility>
#include <vector>

namespace quickthumb::redis_rows {

using fields = std::vector<std::pair<std::string, std::string>>;

// A new job's fields, except id, seq and state (the insert script sets those).
fields new_job_fields(const job& j);
// Fields an outcome sets: the source details learnt by the attempt.
void add_source_details(fields& f, const job_source& src);
// The error fields ("" deletes them).
void add_error(fields& f, const std::optional<error>& err);

// A job from HGETALL's reply (field, value, field, value, ...). Missing fields get their defaults;
// nullopt when the reply is empty (no such job).
std::optional<job> job_from_reply(const resp::value& flat);

}  // namespace quickthumb::redis_rows
