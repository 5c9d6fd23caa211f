// Measures this machine's FP32 peak: independent fused multiply-adds on every thread, with the
// widest vectors the compiler targets (built with -march=native, so those of this CPU). Prints
// GFLOP/s for 1 thread and for --threads N. Engine benchmarks divide by it for "fraction of peak".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr const char* kIsa = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
constexpr const char* kIsa = "avx2+fma";
#else
#error "peak_flops needs AVX2 with FMA, or AVX-512 (build with -march=native on such a CPU)"
#endif
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));

constexpr int kAccumulators = 12;  // enough independent chains to hide FMA latency
constexpr long kIterations = 50'000'000;

// One FMA per accumulator per iteration, written out by a fold so the accumulators stay in
// registers (-ffp-contract=fast makes a * x + y one FMA). Returns a value that depends on every
// accumulator, so nothing is optimised away.
template <std::size_t... A>
float run_kernel(long iterations, std::index_sequence<A...> /*accumulators*/) {
  Vec acc[] = {(Vec{} + static_cast<float>(A) * 1e-3f)...};
  const Vec x = Vec{} + 0.999999f;
  const Vec y = Vec{} + 1e-7f;
  for (long i = 0; i < iterations; ++i) {
    ((acc[A] = acc[A] * x + y), ...);
  }
  return ((acc[A][0] + acc[A][kLanes - 1]) + ...);
}

// GFLOP/s of `threads` threads each running the kernel; best of three runs.
double measure(int threads) {
  double best = 0;
  for (int run = 0; run < 3; ++run) {
    std::vector<std::thread> workers;
    std::vector<float> sinks(static_cast<std::size_t>(threads));
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&sinks, t] {
        sinks[static_cast<std::size_t>(t)] =
            run_kernel(kIterations, std::make_index_sequence<kAccumulators>{});
      });
    }
    for (std::thread& worker : workers) {
      worker.join();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double flops = 2.0 * kLanes * kAccumulators * static_cast<double>(kIterations) * threads;
    best = std::max(best, flops / seconds / 1e9);
    if (sinks[0] == 12345.0f) {
      std::puts("");  // keeps the results alive
    }
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--threads") {
      threads = std::atoi(argv[i + 1]);
    }
  }
  if (threads < 1) {
    std::fprintf(stderr, "peak_flops: --threads: expected a positive number, got %d\n", threads);
    return 1;
  }
  const double one = measure(1);
  const double all = measure(threads);
  std::printf("{\"isa\": \"%s\", \"gflops_1_thread\": %.1f, \"threads\": %d, \"gflops\": %.1f}\n",
              kIsa, one, threads, all);
  return 0;
}
