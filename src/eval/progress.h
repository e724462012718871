// A console progress bar for long replays:
//   replay [#########...........]  45.0%  40,360/89,689  52,114/s  ETA 0:01
//
// Why hand-written: Debian 12 packages no progress-bar library for C++ (indicators,
// tqdm-cpp, progressbar and the like are not in the archive), and the project builds only
// against Debian packages; a bar is small enough not to be worth vendoring one.
//
// Output mode: when `out` is std::cerr/std::clog and stderr is a terminal (or std::cout and
// stdout is a terminal), the line is redrawn in place with '\r' at most ~10 times a second.
// Otherwise (CI logs, files, string streams) a plain line is printed each time progress
// crosses another 10% of `total`, so logs stay short. Finish() prints the final line (count,
// average rate and elapsed time); it is idempotent and the destructor calls it if needed.
// With total == 0 (unknown) no bar, percentage or ETA is shown and, in plain mode, a line is
// printed at most every 10 seconds.
//
// Thread-compatible: one owner calls Update/Finish (or external locking). Update costs one
// clock read when nothing is drawn, so it can be called per event.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>

namespace dynspec::eval {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, std::ostream& out = std::cerr);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` items of `total` are complete (normally non-decreasing; values above total are
  // shown as 100%).
  void Update(uint64_t done);
  // Prints the final line and ends the bar; later Update calls are ignored.
  void Finish();

  // Overrides the terminal detection (tests, or callers that know better).
  void set_interactive(bool interactive) { interactive_ = interactive; }
  bool interactive() const { return interactive_; }

  // The line shown for `done` of `total` after `elapsed_s` seconds; `final` shows the
  // elapsed time instead of the ETA. Exposed for tests.
  static std::string FormatLine(const std::string& label, uint64_t done, uint64_t total,
                                double elapsed_s, bool final);
  // "0:07", "12:34", "1:02:03".
  static std::string FormatDuration(double seconds);

 private:
  using Clock = std::chrono::steady_clock;
  void Draw(bool final);
  double Elapsed() const;

  std::string label_;
  uint64_t total_;
  std::ostream& out_;
  bool interactive_;
  bool finished_ = false;
  uint64_t done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  uint64_t last_decile_ = 0;  // plain mode: last 10% step printed
  size_t last_width_ = 0;     // interactive mode: length of the line on screen
};

}  // namespace dynspec::eval
