#include "eval/table.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <utility>

namespace dynspec::eval {
namespace {

size_t TextLength(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Numbers as they appear in reports: -1,234.5  +3e-4  12.5%  nan  inf  -inf
bool LooksNumeric(const std::string& s) {
  if (s == "nan" || s == "NaN" || s == "inf" || s == "-inf" || s == "+inf") return true;
  size_t i = 0, n = s.size();
  if (n > 0 && s[n - 1] == '%') --n;
  if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
  bool digits = false;
  while (i < n && (IsDigit(s[i]) || (s[i] == ',' && digits))) {
    digits |= IsDigit(s[i]);
    ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && IsDigit(s[i])) {
      digits = true;
      ++i;
    }
  }
  if (!digits) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    bool exp_digits = false;
    while (i < n && IsDigit(s[i])) {
      exp_digits = true;
      ++i;
    }
    if (!exp_digits) return false;
  }
  return i == n;
}

std::string CsvField(const std::string& s) {
  const bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
                     (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

TextTable::TextTable(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void TextTable::AddRow(std::vector<std::string> row) {
  assert(row.size() <= headers_.size() && "TextTable::AddRow: more cells than headers");
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

std::string TextTable::Render() const {
  const size_t cols = headers_.size();
  std::vector<size_t> width(cols, 0);
  std::vector<bool> numeric(cols, false);
  for (size_t c = 0; c < cols; ++c) {
    width[c] = TextLength(headers_[c]);
    bool any = false, all = true;
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], TextLength(row[c]));
      if (row[c].empty()) continue;
      any = true;
      all = all && LooksNumeric(row[c]);
    }
    numeric[c] = any && all;
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cols; ++c) {
      if (c) line += "  ";
      const size_t pad = width[c] - TextLength(cells[c]);
      if (numeric[c]) {
        line.append(pad, ' ');
        line += cells[c];
      } else {
        line += cells[c];
        line.append(pad, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  emit(headers_);
  std::vector<std::string> rule(cols);
  for (size_t c = 0; c < cols; ++c) rule[c] = std::string(width[c], '-');
  emit(rule);
  for (const auto& row : rows_) emit(row);
  return out;
}

std::string TextTable::RenderCsv() const {
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c) out.push_back(',');
      out += CsvField(cells[c]);
    }
    out += "\r\n";
  };
  emit(headers_);
  for (const auto& row : rows_) emit(row);
  return out;
}

std::string FormatDouble(double v, int precision) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  precision = std::clamp(precision, 0, 17);
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

}  // namespace dynspec::eval
