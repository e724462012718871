// Command-line flags of the benchmark programs: "--name value" pairs.
//
// A flag without a value, an unknown flag or a value the flag cannot take ends the program
// with status 2 and a message naming the flag; "--help" prints the usage and exits with 0.
// A mistyped flag must not quietly run the default workload: the runs take minutes to an
// hour, and their figures would be labelled with settings they did not use.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dynspec::bench {

// Strict parsing of a flag's value: the whole text must be the number, in plain decimal
// (no spaces, no '+', no hexadecimal). They throw std::invalid_argument, which ParseFlags
// reports with the flag's name.
inline void CheckPlainNumber(const std::string& v, bool sign_allowed) {
  const size_t first = sign_allowed && !v.empty() && v[0] == '-' ? 1 : 0;
  if (v.size() <= first || v[first] < '0' || v[first] > '9' ||
      v.find_first_of("xX") != std::string::npos) {
    throw std::invalid_argument(v);
  }
}

inline size_t FlagCount(const std::string& v) {  // a non-negative integer
  CheckPlainNumber(v, false);
  size_t used = 0;
  const unsigned long long n = std::stoull(v, &used);
  if (used != v.size()) throw std::invalid_argument(v);
  return static_cast<size_t>(n);
}

inline int FlagInt(const std::string& v) {
  CheckPlainNumber(v, true);
  size_t used = 0;
  const int n = std::stoi(v, &used);
  if (used != v.size()) throw std::invalid_argument(v);
  return n;
}

inline double FlagDouble(const std::string& v) {  // finite
  CheckPlainNumber(v, true);
  size_t used = 0;
  const double d = std::stod(v, &used);
  if (used != v.size() || !std::isfinite(d)) throw std::invalid_argument(v);
  return d;
}

// "1000,20000": counts separated by commas, at least one.
inline std::vector<size_t> FlagCountList(const std::string& v) {
  std::vector<size_t> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(FlagCount(item));
  if (out.empty()) throw std::invalid_argument(v);
  return out;
}

// Ends the program with status 2 after printing `message` and the usage.
[[noreturn]] inline void FlagError(const std::string& message, const char* usage) {
  std::fprintf(stderr, "%s\nusage: %s", message.c_str(), usage);
  std::exit(2);
}

// Hands every pair, in order, to `set(flag, value)`, which returns false for a flag it
// does not know and may throw std::invalid_argument or std::out_of_range on a bad value.
template <typename Set>
void ParseFlags(int argc, char** argv, const char* usage, Set set) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: %s", usage);
      std::exit(0);
    }
    if (i + 1 >= argc) FlagError(flag + " needs a value", usage);
    const std::string value = argv[i + 1];
    bool known = false;
    try {
      known = set(flag, value);
    } catch (const std::invalid_argument&) {
      FlagError(flag + " " + value + ": not a value this flag takes", usage);
    } catch (const std::out_of_range&) {
      FlagError(flag + " " + value + ": out of range", usage);
    }
    if (!known) FlagError("unknown flag " + flag, usage);
  }
}

}  // namespace dynspec::bench
