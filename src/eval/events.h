// Replay events: a small, documented file format so that any log can be replayed through the
// engine by the evaluation harness. The full description with examples is in
// docs/event-format.md; this comment is the contract.
//
// An event is one observed interaction: at `timestamp`, `user` was shown `item` (made by
// `provider`, with content `text` or a precomputed `vector`) in `context`, and the observed
// `responses` (head name -> value) came back.
//
// Two encodings are read, chosen by file extension (`.jsonl` or `.csv`, case-insensitive):
//
// JSON lines (.jsonl): one JSON object per line, UTF-8. Blank lines are skipped.
//   {"ts":1005177600,"user":"U1","item":"B0001","provider":"Hearst","text":"...",
//    "vector":[0.1,0.2],"responses":{"like":1},
//    "context":{"dense":[0.5,1.0],"sparse":{"country=us":1.0}}}
//   ts          integer, seconds since epoch                       required
//   item        non-empty string                                   required
//   responses   object head name -> finite number, at least one    required
//   user        string                                             optional
//   provider    string; non-empty on the item's first event        optional afterwards
//   text        string; non-empty on the item's first event        unless `vector` is given
//   vector      array of finite numbers (float range)              optional
//   context     object with optional "dense" (array of finite numbers) and "sparse"
//               (object name -> finite number, order kept)          optional
//   Any other key (at the top level or inside "context"), a duplicate key, a value of the
//   wrong type, a NaN/Infinity or out-of-range number is an error.
//
// CSV (.csv): RFC 4180. A header row is required. Columns `ts` and `item` are required;
//   `user`, `provider` and `text` are optional; every other column is a response head whose
//   cells hold a finite number, or nothing when the head was not observed (each row needs at
//   least one observed head). Fields may be quoted ("a, b"), quotes inside quoted fields are
//   doubled ("say ""hi"""), and quoted fields may span lines. Lines may end in LF or CRLF; a
//   UTF-8 byte order mark is skipped. CSV has no vector or context columns.
//
// Both readers return the events in file order and check that timestamps never decrease.
// Errors are Status values, never exceptions: IoError when the file cannot be read,
// InvalidArgument for content, with the message naming the file, the (first) line of the
// record and the field, e.g. `events.jsonl:7: field "responses.like": not a finite number`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec::eval {

struct ReplayEvent {
  int64_t timestamp = 0;         // seconds since epoch
  std::string user;              // optional
  std::string item;              // required
  std::string provider;          // required on an item's first event, optional afterwards
  std::string text;              // content text; needed on the item's first event unless
                                 // `vector` is given
  std::vector<float> vector;     // optional precomputed embedding
  dynspec::Responses responses;  // head name -> value, at least one
  dynspec::Context context;      // optional
};

// Reads `path` as JSON lines (.jsonl) or CSV (.csv), by extension; any other extension is an
// InvalidArgument error.
Result<std::vector<ReplayEvent>> ReadEvents(const std::string& path);
Result<std::vector<ReplayEvent>> ReadEventsJsonl(const std::string& path);
Result<std::vector<ReplayEvent>> ReadEventsCsv(const std::string& path);

// Writes `events` as JSON lines that ReadEventsJsonl reads back unchanged (floats are written
// in their shortest round-trip form; empty optional fields are left out). Before writing
// anything it checks the events by the reader's rules (non-empty item, at least one response,
// finite numbers, valid UTF-8, time order, provider and content on an item's first event)
// and names the offending event by index; IoError when the file cannot be written.
Status WriteEventsJsonl(const std::string& path, const std::vector<ReplayEvent>& events);

}  // namespace dynspec::eval
