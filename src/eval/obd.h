// Reader for the Open Bandit Dataset (Saito et al., 2021) sample files bundled in
// data/open_bandit_dataset/ ({random,bts}/{men,women}/{men,women}.csv; see its SOURCE.md).
//
// Format: comma-separated, one header line, no quoting (no field contains a comma or a quote).
// Columns, in this order:
//   ""                        unnamed row index (integer)
//   timestamp                 impression time, non-empty text (e.g. 2019-11-24 00:03:13.44+00:00)
//   item_id                   the action, an integer in [0, number of affinity columns)
//   position                  slot of the 3-slot widget, an integer >= 1
//   click                     0 or 1
//   propensity_score          probability the logging policy put this item at this position,
//                             in (0, 1]
//   user_feature_0..K-1       hashed categorical user features (text, may be empty)
//   user-item_affinity_0..M-1 one finite number per item (M = number of items)
// Lines may end in LF or CRLF; a UTF-8 byte order mark and blank lines are skipped.
// Errors: IoError when the file cannot be read; InvalidArgument naming the file, the line and
// the column, e.g. `men.csv:17: column "click": "2" is not 0 or 1`,
// `men.csv:1: column 7 is "foo", expected "user_feature_1" or "user-item_affinity_0"`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dynspec/status.h"

namespace dynspec::eval {

struct ObdRow {
  int64_t index = 0;
  std::string timestamp;
  int item_id = 0;
  int position = 0;
  int click = 0;
  double propensity = 0;
  std::vector<std::string> user_features;  // user_feature_0..K-1
  std::vector<float> affinity;             // user-item_affinity_0..M-1
};

// The rows of one OBD csv file, in file order.
Result<std::vector<ObdRow>> ReadObd(const std::string& csv_path);

}  // namespace dynspec::eval
