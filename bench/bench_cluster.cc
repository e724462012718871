// bench_cluster: time and peak memory of hierarchical clustering (src/cluster/hierarchical.h)
// on synthetic provider profiles: points in `dim` dimensions around 50 Gaussian centres.
//
//   bench_cluster [--exact 1000,20000] [--single 1000,20000] [--two-stage 200000]
//                 [--groups 2000] [--k 50] [--dim 16]
//
// --exact runs exact average linkage, --single exact single linkage, --two-stage
// TwoStageClusters with average linkage (and then its k-means stage alone). For each run it
// prints the wall and CPU time (single-threaded, so CPU time is the steadier figure on a
// busy machine) and the run's peak resident memory: the kernel's high-water mark (VmHWM in
// /proc/self/status) is reset before each run by writing 5 to /proc/self/clear_refs, so the
// figure is the run's own peak, which includes the input points and the program; "+X over
// the start" is the growth over the resident memory when the run started (a lower bound on
// what the run allocated, since it may reuse heap freed by an earlier run). If the reset is
// not permitted, the peak is the process's so far, marked "(cumulative)".
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "cluster/hierarchical.h"
#include "cluster/kmeans_euclid.h"

namespace {

using Clock = std::chrono::steady_clock;
using dynspec::Linkage;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds this process has used (user + system): on a busy machine a steadier figure
// than the wall time.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// A field of /proc/self/status in kB ("VmHWM", "VmRSS"); -1 when unreadable.
long StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, len, field) == 0 && line.size() > len && line[len] == ':') {
      return std::stol(line.substr(len + 1));
    }
  }
  return -1;
}

bool ResetPeak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

std::vector<std::vector<float>> MakeProfiles(size_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<std::vector<float>> centres(50, std::vector<float>(dim));
  for (auto& c : centres) {
    for (float& x : c) x = 3.0f * g(rng);
  }
  std::vector<std::vector<float>> out(n, std::vector<float>(dim));
  for (size_t i = 0; i < n; ++i) {
    const auto& c = centres[rng() % centres.size()];
    for (int d = 0; d < dim; ++d) out[i][d] = c[d] + g(rng);
  }
  return out;
}

// `base_kb`: the resident memory when the run started (the input points, the allocator's
// retained heap, the program); `input_mib`: the coordinates alone (n * dim floats).
void Report(const char* what, size_t n, double seconds, double cpu, bool reset, long base_kb,
            double input_mib) {
  const long hwm = StatusKb("VmHWM");
  std::printf(
      "%-34s n=%-7zu wall %7.2f s  cpu %7.2f s  peak RSS %7.1f MiB%s, +%.1f MiB over the "
      "start (coordinates %.1f MiB)\n",
      what, n, seconds, cpu, hwm / 1024.0, reset ? "" : " (cumulative)", (hwm - base_kb) / 1024.0,
      input_mib);
  std::fflush(stdout);
}

void RunExact(Linkage linkage, size_t n, int dim) {
  auto points = MakeProfiles(n, dim, 7);
  const double input_mib = double(n) * dim * sizeof(float) / (1 << 20);
  const bool reset = ResetPeak();
  const long base_kb = StatusKb("VmRSS");
  const double c0 = CpuSeconds();
  const auto t0 = Clock::now();
  auto d = dynspec::Agglomerate(points, linkage);
  const auto t1 = Clock::now();
  const double cpu = CpuSeconds() - c0;
  if (!d.ok()) {
    std::printf("%s linkage, n=%zu: %s\n", dynspec::LinkageName(linkage), n,
                d.status().ToString().c_str());
    return;
  }
  const std::string what = std::string("exact ") + dynspec::LinkageName(linkage) + " linkage";
  Report(what.c_str(), n, Seconds(t0, t1), cpu, reset, base_kb, input_mib);
}

void RunKMeans(size_t n, size_t groups, int dim) {
  auto points = MakeProfiles(n, dim, 9);
  const double input_mib = double(n) * dim * sizeof(float) / (1 << 20);
  const bool reset = ResetPeak();
  const long base_kb = StatusKb("VmRSS");
  const double c0 = CpuSeconds();
  const auto t0 = Clock::now();
  auto km = dynspec::EuclideanKMeans(points, static_cast<int>(groups), 10, 1);
  const auto t1 = Clock::now();
  const double cpu = CpuSeconds() - c0;
  if (!km.ok()) {
    std::printf("k-means, n=%zu: %s\n", n, km.status().ToString().c_str());
    return;
  }
  const std::string what = " of which k-means, " + std::to_string(groups) + " groups";
  Report(what.c_str(), n, Seconds(t0, t1), cpu, reset, base_kb, input_mib);
}

void RunTwoStage(size_t n, size_t groups, size_t k, int dim) {
  auto points = MakeProfiles(n, dim, 9);
  const double input_mib = double(n) * dim * sizeof(float) / (1 << 20);
  const bool reset = ResetPeak();
  const long base_kb = StatusKb("VmRSS");
  const double c0 = CpuSeconds();
  const auto t0 = Clock::now();
  auto labels = dynspec::TwoStageClusters(points, Linkage::kAverage, groups, k, 1);
  const auto t1 = Clock::now();
  const double cpu = CpuSeconds() - c0;
  if (!labels.ok()) {
    std::printf("two-stage, n=%zu: %s\n", n, labels.status().ToString().c_str());
    return;
  }
  const std::string what = "two-stage average, " + std::to_string(groups) + " groups";
  Report(what.c_str(), n, Seconds(t0, t1), cpu, reset, base_kb, input_mib);
}

}  // namespace

constexpr char kUsage[] =
    "bench_cluster [--exact 1000,20000] [--single 1000,20000] [--two-stage 200000]\n"
    "              [--groups 2000] [--k 50] [--dim 16]\n";

int main(int argc, char** argv) {
  std::vector<size_t> exact = {1000, 20000}, single = {1000, 20000}, two_stage = {200000};
  size_t groups = 2000, k = 50;
  int dim = 16;
  using namespace dynspec::bench;
  ParseFlags(argc, argv, kUsage, [&](const std::string& a, const std::string& v) {
    if (a == "--exact") {
      exact = FlagCountList(v);
    } else if (a == "--single") {
      single = FlagCountList(v);
    } else if (a == "--two-stage") {
      two_stage = FlagCountList(v);
    } else if (a == "--groups") {
      groups = FlagCount(v);
    } else if (a == "--k") {
      k = FlagCount(v);
    } else if (a == "--dim") {
      dim = FlagInt(v);
    } else {
      return false;
    }
    return true;
  });
  bool sizes_ok = true;
  for (const auto* list : {&exact, &single, &two_stage}) {
    for (size_t n : *list) sizes_ok = sizes_ok && n >= 1;
  }
  if (dim < 1 || groups < 1 || groups > (1u << 30) || k < 1 || !sizes_ok) {
    FlagError("out of range: --dim, --k and every size must be >= 1, --groups in [1, 2^30]",
              kUsage);
  }
  std::printf("dimension %d; single-threaded; peak RSS per run\n", dim);
  for (size_t n : exact) RunExact(Linkage::kAverage, n, dim);
  for (size_t n : single) RunExact(Linkage::kSingle, n, dim);
  for (size_t n : two_stage) {
    RunTwoStage(n, groups, k, dim);
    RunKMeans(n, groups, dim);
  }
  return 0;
}
