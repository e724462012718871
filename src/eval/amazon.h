// Converter for the Amazon Review Data (2018) "Magazine Subscriptions" category
// (data/amazon_magazine_subscriptions/, see its SOURCE.md) into replay events.
//
// Inputs:
//   ratings_csv   no header, one rating per line: `asin,user,rating,unix_time`
//                 (e.g. `B00005N7P0,AH2IFH762VY5U,5.0,1005177600`).
//   meta_json_gz  gzip file, one JSON object per line (lines can be many KB). The first
//                 record of each `asin` is kept; later duplicates are ignored.
//
// Each rating of an item that has metadata and a provider becomes one ReplayEvent:
//   timestamp = unix_time, user = reviewer id, item = asin,
//   provider  = `brand` (trimmed), or the `details["Publisher:"]` entry when the brand is
//               empty; ratings of items with neither are dropped (dropped_no_brand),
//   text      = the `description` strings (HTML tags stripped, entities decoded, whitespace
//               collapsed) joined by a space, followed by the `category` entries except the
//               leading "Magazine Subscriptions", all parts joined by " ; ". The `title` field
//               is a broken HTML fragment in this release and is ignored. When an item has
//               neither description nor category the provider name is used as its text, so
//               every event satisfies the event format (text on the item's first event).
//   responses = {"like": rating >= like_threshold ? 1 : 0}.
// Provider and text are set on every event, not only the item's first one. Ratings of items
// without metadata are dropped (dropped_no_meta). The result is sorted by timestamp; ties keep
// their order in the ratings file.
//
// Errors (Status, never exceptions): IoError when a file cannot be opened or read;
// InvalidArgument for a malformed line, naming the file, line number and field.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dynspec/status.h"
#include "eval/events.h"

namespace dynspec::eval {

struct AmazonOptions {
  double like_threshold = 4.0;  // a rating >= this is a like (1), otherwise 0
};

struct AmazonStats {
  size_t ratings_read = 0;      // lines in the ratings file
  size_t ratings_kept = 0;      // events returned
  size_t dropped_no_meta = 0;   // ratings of items missing from the metadata
  size_t dropped_no_brand = 0;  // ratings of items with no brand and no publisher
  size_t items = 0;             // distinct items among the kept ratings
  size_t providers = 0;         // distinct providers among the kept ratings
};

// `stats` may be null.
Result<std::vector<ReplayEvent>> ConvertAmazon(const std::string& ratings_csv,
                                               const std::string& meta_json_gz,
                                               const AmazonOptions& options, AmazonStats* stats);

}  // namespace dynspec::eval
