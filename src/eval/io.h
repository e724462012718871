// File output shared by the evaluation reports.
#pragma once

#include <fstream>
#include <string>

#include "dynspec/status.h"

namespace dynspec::eval {

// Writes `text` to `path` (replacing it); IoError naming the path when it cannot.
inline Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

}  // namespace dynspec::eval
