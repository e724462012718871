// Small helpers shared by the test programs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace dynspec::testing_util {

// A random direction in `dim` dimensions (Gaussian, L2-normalized).
inline std::vector<float> RandomUnit(int dim, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(dim));
  double norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += static_cast<double>(x) * x;
  }
  norm = std::sqrt(norm);
  for (float& x : v) x = static_cast<float>(x / norm);
  return v;
}

// A fresh, empty directory (named after the test, the process and a per-process count, so a
// test may hold several), removed when it goes out of scope.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    static std::atomic<int> count{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? std::string(info->test_suite_name()) + "_" + info->name() : "no_test";
    std::replace(test.begin(), test.end(), '/', '_');  // parameterized tests' names hold '/'
    path_ = std::filesystem::temp_directory_path() /
            ("dynspec_" + std::to_string(getpid()) + "_" + test + "_" + std::to_string(count++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }
  // Writes `content` to the file `name` in the directory and returns its path.
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string p = Sub(name);
    std::ofstream out(p, std::ios::binary);
    out << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace dynspec::testing_util
