#pragma once
// A job as the Redis store keeps it: the fields of its hash (job:<id>), as flat field/value
// strings, and the shapes of the replies its scripts and streams give. Pure: no I/O.
#include "quickthumb/job.hpp"
#include "quickthumb/redis_store.hpp"
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

// ---- the store's replies (the scripts' and the streams' shapes) ----
std::int64_t to_int(const resp::value& v);  // an integer or a numeric string; 0 otherwise
std::string str(const resp::value& v);      // a string's text; "" otherwise
// A refused transition (a script's {"refused", current state}): the answers the SQLite store
// gives, or a conflict when another instance took the job ("taken").
error refusal(const std::string& id, const std::string& current, job_state to);
// A transition's reply {"ok"|..., event id, previous state, fields} as a change.
std::optional<job_change> change_of(const resp::value& v);
// Entries of one stream in an XREADGROUP / XRANGE / XAUTOCLAIM reply: [[id, [field, value...]], ...].
std::vector<std::pair<std::string, const resp::value*>> stream_entries(const resp::value& list);
// A field of an entry's [field, value, ...] list ("" when absent).
std::string field_of(const resp::value* fields, std::string_view name);
// The job ids of an idempotency key's JSON array.
std::vector<std::string> ids_of(const std::string& json);
// An events stream entry: prev, by, then the job's fields.
stored_event event_of(const std::string& id, const resp::value* fields);

}  // namespace quickthumb::redis_rows
