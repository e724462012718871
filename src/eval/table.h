// Plain-text and CSV tables for evaluation reports.
//
// TextTable::Render() aligns columns for a terminal or a log:
//   strategy   auc     log_loss
//   ---------  ------  --------
//   global     0.7012    0.5123
//   cluster    0.7350    0.4981
// Columns are separated by two spaces and sized to their widest cell (counted in UTF-8
// code points). A column whose non-empty body cells are all numbers (optionally signed,
// with a decimal point, an exponent, thousands commas or a trailing %; "nan"/"inf" count) is
// right-aligned, header included; other columns are left-aligned. Lines have no trailing
// spaces and end in '\n'.
// TextTable::RenderCsv() writes RFC 4180 CSV: the header row, then the rows; fields that
// contain a comma, a quote, CR or LF (or start/end with a space) are quoted with inner quotes
// doubled; records end in CRLF.
// A row with fewer cells than headers is padded with empty cells; one with more is a
// programmer error (asserted, and the extra cells are dropped).
#pragma once

#include <string>
#include <vector>

namespace dynspec::eval {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> row);
  size_t rows() const { return rows_.size(); }
  std::string Render() const;
  std::string RenderCsv() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Fixed-point with `precision` decimals: FormatDouble(0.12345, 3) == "0.123". NaN -> "nan",
// infinities -> "inf" / "-inf"; a result that rounds to zero has no minus sign.
std::string FormatDouble(double v, int precision);

}  // namespace dynspec::eval
