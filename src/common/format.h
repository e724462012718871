// Number formatting for error messages that must show a value exactly.
#pragma once

#include <cstdio>
#include <string>

namespace dynspec {

// The shortest-safe round-trip form of a double ("%.17g").
inline std::string ExactNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace dynspec
