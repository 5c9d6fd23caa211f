#include "engine/train/exp_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace cajal::engine::train::detail {
namespace {

// |y - truth| in units in the last place of the double nearest the truth (long double's expl and
// logl: 11 more bits than double).
double ulps(double y, long double truth) {
  const auto nearest = static_cast<double>(truth);
  const double ulp = std::nextafter(nearest, std::numeric_limits<double>::infinity()) - nearest;
  return static_cast<double>(std::abs(static_cast<long double>(y) - truth) /
                             static_cast<long double>(ulp));
}

// A count that is not a multiple of 8, so the last values go through the filled vector.
std::vector<double> uniform(double low, double high, std::size_t count, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> pick(low, high);
  std::vector<double> values(count);
  for (auto& v : values)
    v = pick(rng);
  return values;
}

TEST(ExpLog, ExpOfNonPositiveValuesIsWithinOneUnitInTheLastPlace) {
  for (const auto& [low, high] : {std::pair{-708.0, 0.0}, {-1.0, 0.0}, {-1e-6, 0.0}}) {
    const auto in = uniform(low, high, 200003, 5);
    std::vector<double> out(in.size());
    exp_nonpositive(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
    double worst = 0.0;
    for (std::size_t i = 0; i < in.size(); ++i)
      worst = std::max(worst, ulps(out[i], std::exp(static_cast<long double>(in[i]))));
    EXPECT_LE(worst, 1.0) << low;
  }
}

TEST(ExpLog, ExpIsExactlyOneAtZeroAndZeroBelowTheNormalRange) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> values{0.0, -0.0, -708.0, -708.5, -745.0, -1e300, -inf, nan, -1e-300};
  exp_nonpositive(values.data(), values.data(), static_cast<std::int64_t>(values.size()));
  EXPECT_EQ(values[0], 1.0);
  EXPECT_EQ(values[1], 1.0);
  EXPECT_GT(values[2], std::numeric_limits<double>::min());  // exp(-708), still normal
  for (std::size_t i = 3; i < 7; ++i)
    EXPECT_EQ(values[i], 0.0) << i;
  EXPECT_TRUE(std::isnan(values[7]));
  EXPECT_EQ(values[8], 1.0);
}

TEST(ExpLog, LogOfPositiveValuesIsWithinOneUnitInTheLastPlace) {
  for (const auto& [low, high] : {std::pair{1.0, 2.0}, {0.5, 4.0}, {1.0, 1e12}, {1e-300, 1e-290}}) {
    const auto in = uniform(low, high, 200003, 6);
    std::vector<double> out(in.size());
    log_positive(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
    double worst = 0.0;
    for (std::size_t i = 0; i < in.size(); ++i)
      worst = std::max(worst, ulps(out[i], std::log(static_cast<long double>(in[i]))));
    EXPECT_LE(worst, 1.0) << low;
  }
}

TEST(ExpLog, LogIsExactlyZeroAtOneAndKeepsInfinityAndNaN) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> values{1.0, 2.0, 0.5, inf, std::numeric_limits<double>::quiet_NaN()};
  log_positive(values.data(), values.data(), static_cast<std::int64_t>(values.size()));
  EXPECT_EQ(values[0], 0.0);
  EXPECT_FALSE(std::signbit(values[0]));
  EXPECT_EQ(values[1], std::log(2.0));
  EXPECT_EQ(values[2], -std::log(2.0));
  EXPECT_EQ(values[3], inf);
  EXPECT_TRUE(std::isnan(values[4]));
}

}  // namespace
}  // namespace cajal::engine::train::detail
