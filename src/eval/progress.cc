#include "eval/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace dynspec::eval {
namespace {

constexpr int kBarWidth = 20;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr auto kUnknownTotalInterval = std::chrono::seconds(10);

bool IsTerminal(const std::ostream& out) {
  if (&out == &std::cerr || &out == &std::clog) return isatty(STDERR_FILENO) == 1;
  if (&out == &std::cout) return isatty(STDOUT_FILENO) == 1;
  return false;
}

// 1234567 -> "1,234,567"
std::string WithCommas(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string FormatRate(double per_s) {
  if (!std::isfinite(per_s) || per_s <= 0) return "-/s";
  if (per_s < 100) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f/s", per_s);
    return buf;
  }
  return WithCommas(static_cast<uint64_t>(std::llround(per_s))) + "/s";
}

}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total, std::ostream& out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      interactive_(IsTerminal(out)),
      start_(Clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  uint64_t s = static_cast<uint64_t>(std::llround(seconds));
  char buf[48];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

std::string ProgressBar::FormatLine(const std::string& label, uint64_t done, uint64_t total,
                                    double elapsed_s, bool final) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  std::string line = label;
  if (total > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(frac * kBarWidth);
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%5.1f%%", frac * 100.0);
    line += " [" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] " + pct +
            "  " + WithCommas(done) + "/" + WithCommas(total);
  } else {
    line += "  " + WithCommas(done);
  }
  line += "  " + FormatRate(rate);
  if (final) {
    line += "  done in " + FormatDuration(elapsed_s);
  } else if (total > 0) {
    const double eta = done >= total ? 0.0
                                     : (rate > 0 ? static_cast<double>(total - done) / rate
                                                 : std::numeric_limits<double>::quiet_NaN());
    line += "  ETA " + FormatDuration(eta);
  } else {
    line += "  elapsed " + FormatDuration(elapsed_s);
  }
  return line;
}

double ProgressBar::Elapsed() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressBar::Draw(bool final) {
  std::string line = FormatLine(label_, done_, total_, Elapsed(), final);
  if (interactive_) {
    const size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');  // erase the old tail
    last_width_ = width;
    out_ << '\r' << line;
    if (final) out_ << '\n';
  } else {
    out_ << line << '\n';
  }
  out_.flush();
  last_draw_ = Clock::now();
}

void ProgressBar::Update(uint64_t done) {
  if (finished_) return;
  done_ = done;
  if (interactive_) {
    const auto now = Clock::now();
    if (now - last_draw_ >= kRedrawInterval) Draw(false);
    return;
  }
  if (total_ == 0) {
    if (Clock::now() - last_draw_ >= kUnknownTotalInterval) Draw(false);
    return;
  }
  // Plain mode: one line per 10% step below 100%; Finish prints the last line.
  const uint64_t decile = done >= total_ ? 10 : done * 10 / total_;
  if (decile > last_decile_ && decile < 10) {
    last_decile_ = decile;
    Draw(false);
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

}  // namespace dynspec::eval
