#include "eval/obd.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>

namespace dynspec::eval {
namespace {

constexpr const char* kFixed[] = {"",         "timestamp", "item_id",
                                  "position", "click",     "propensity_score"};
constexpr size_t kNumFixed = sizeof(kFixed) / sizeof(kFixed[0]);

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

template <typename T>
bool ParseInt(std::string_view s, T* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, *out);
  return !s.empty() && ec == std::errc() && p == e;
}

bool ParseDouble(std::string_view s, double* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, *out);
  return !s.empty() && ec == std::errc() && p == e && std::isfinite(*out);
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  Status Error(size_t line, const std::string& what) const {
    return Status::InvalidArgument(path_ + ":" + std::to_string(line) + ": " + what);
  }
  Status ColumnError(size_t line, const std::string& column, std::string_view value,
                     const std::string& what) const {
    return Error(line, "column " + Quote(column) + ": " + Quote(value) + " " + what);
  }

  Status Header(size_t line, std::string_view text) {
    const std::vector<std::string_view> cols = Split(text);
    for (size_t c = 0; c < kNumFixed; ++c) {
      if (c >= cols.size()) {
        return Error(line, "header has " + std::to_string(cols.size()) +
                               " columns, expected at least " + std::to_string(kNumFixed));
      }
      if (cols[c] != kFixed[c]) {
        return Error(line, "column " + std::to_string(c) + " is " + Quote(cols[c]) + ", expected " +
                               Quote(kFixed[c]));
      }
    }
    for (size_t c = kNumFixed; c < cols.size(); ++c) {
      const std::string user = "user_feature_" + std::to_string(num_user_);
      const std::string aff = "user-item_affinity_" + std::to_string(num_affinity_);
      if (num_affinity_ == 0 && cols[c] == user) {
        ++num_user_;
      } else if (cols[c] == aff) {
        ++num_affinity_;
      } else {
        return Error(line, "column " + std::to_string(c) + " is " + Quote(cols[c]) + ", expected " +
                               (num_affinity_ == 0 ? Quote(user) + " or " : std::string()) +
                               Quote(aff));
      }
    }
    names_.assign(cols.begin(), cols.end());
    return Status::Ok();
  }

  Status Row(size_t line, std::string_view text, ObdRow* row) const {
    const std::vector<std::string_view> f = Split(text);
    if (f.size() != names_.size()) {
      return Error(line, "has " + std::to_string(f.size()) + " fields, expected " +
                             std::to_string(names_.size()) + " (as in the header)");
    }
    if (!ParseInt(f[0], &row->index)) return ColumnError(line, "", f[0], "is not an integer");
    if (f[1].empty()) return ColumnError(line, "timestamp", f[1], "is empty");
    row->timestamp.assign(f[1]);
    if (!ParseInt(f[2], &row->item_id) || row->item_id < 0) {
      return ColumnError(line, "item_id", f[2], "is not an integer >= 0");
    }
    if (num_affinity_ > 0 && static_cast<size_t>(row->item_id) >= num_affinity_) {
      return ColumnError(line, "item_id", f[2],
                         "is out of range: there are " + std::to_string(num_affinity_) +
                             " items (affinity columns)");
    }
    if (!ParseInt(f[3], &row->position) || row->position < 1) {
      return ColumnError(line, "position", f[3], "is not an integer >= 1");
    }
    if (!ParseInt(f[4], &row->click) || (row->click != 0 && row->click != 1)) {
      return ColumnError(line, "click", f[4], "is not 0 or 1");
    }
    if (!ParseDouble(f[5], &row->propensity) || !(row->propensity > 0) || row->propensity > 1) {
      return ColumnError(line, "propensity_score", f[5], "is not a number in (0, 1]");
    }
    row->user_features.assign(f.begin() + kNumFixed, f.begin() + kNumFixed + num_user_);
    row->affinity.resize(num_affinity_);
    for (size_t k = 0; k < num_affinity_; ++k) {
      const size_t c = kNumFixed + num_user_ + k;
      double v = 0;
      if (!ParseDouble(f[c], &v) || std::abs(v) > std::numeric_limits<float>::max()) {
        return ColumnError(line, names_[c], f[c], "is not a finite number");
      }
      row->affinity[k] = static_cast<float>(v);
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  std::vector<std::string> names_;
  size_t num_user_ = 0;
  size_t num_affinity_ = 0;
};

}  // namespace

Result<std::vector<ObdRow>> ReadObd(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) {
    return Status::IoError(csv_path + ": cannot open for reading: " + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Status::IoError(csv_path + ": read failed");
  const std::string data = buf.str();

  std::string_view rest(data);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  Reader reader(csv_path);
  std::vector<ObdRow> rows;
  bool have_header = false;
  size_t line_no = 0;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!have_header) {
      DYNSPEC_RETURN_IF_ERROR(reader.Header(line_no, line));
      have_header = true;
      continue;
    }
    ObdRow row;
    DYNSPEC_RETURN_IF_ERROR(reader.Row(line_no, line, &row));
    rows.push_back(std::move(row));
  }
  if (!have_header) return Status::InvalidArgument(csv_path + ": no header line");
  return rows;
}

}  // namespace dynspec::eval
