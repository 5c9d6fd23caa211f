#include "engine/train/init.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "engine/train/random.h"
#include "tests/train/fixture.h"

namespace cajal::engine::train {
namespace {

struct Stats {
  double mean = 0.0;
  double stddev = 0.0;
  double max_abs = 0.0;
};

Stats stats_of(const Tensor& t) {
  double sum = 0.0, sum_sq = 0.0;
  Stats s;
  for (const float v : t.values()) {
    sum += v;
    sum_sq += double{v} * v;
    s.max_abs = std::max(s.max_abs, std::abs(double{v}));
  }
  const auto n = static_cast<double>(t.size());
  s.mean = sum / n;
  s.stddev = std::sqrt(sum_sq / n - s.mean * s.mean);
  return s;
}

// Fans, stds and bounds as torch.nn.init computes them (recorded by the fixture script).
TEST(Init, FansAndScalesMatchTorchNnInit) {
  for (const auto& c : testing::read_fixture("init")) {
    const auto dims = c.at("dims").get<Dims>();
    const auto fans = compute_fans(dims);
    EXPECT_EQ(fans.fan_in, c.at("fan_in").get<std::int64_t>());
    EXPECT_EQ(fans.fan_out, c.at("fan_out").get<std::int64_t>());
    const auto near = [&](const InitConfig& config, double expected, bool bound) {
      const auto scale = init_scale(config, dims);
      EXPECT_NEAR(bound ? scale.bound : scale.stddev, expected, 1e-15 * expected)
          << to_string(dims);
    };
    near({.scheme = InitScheme::kaiming_normal}, c.at("kaiming_fan_in_std"), false);
    near({.scheme = InitScheme::kaiming_uniform, .mode = FanMode::fan_out, .negative_slope = 0.2},
         c.at("kaiming_fan_out_leaky_std"), false);
    near({.scheme = InitScheme::xavier_normal}, c.at("xavier_std"), false);
    near({.scheme = InitScheme::xavier_uniform}, c.at("xavier_uniform_bound"), true);
    near({.scheme = InitScheme::pytorch_default}, c.at("default_bound"), true);
  }
  EXPECT_THROW(compute_fans({5}), Error);
}

// Over 128 x 64 x 3 x 3 = 73728 values the sample mean and std are within a few percent.
TEST(Init, StatisticsFollowTheScheme) {
  const Dims dims{128, 64, 3, 3};
  for (const auto scheme :
       {InitScheme::kaiming_normal, InitScheme::kaiming_uniform, InitScheme::xavier_normal,
        InitScheme::xavier_uniform, InitScheme::pytorch_default}) {
    const InitConfig config{.scheme = scheme};
    const auto expected = init_scale(config, dims);
    Tensor w(dims);
    Generator g(42);
    initialize_weights(w, config, g);
    const auto s = stats_of(w);
    EXPECT_NEAR(s.mean, 0.0, 0.02 * expected.stddev) << static_cast<int>(scheme);
    EXPECT_NEAR(s.stddev, expected.stddev, 0.02 * expected.stddev) << static_cast<int>(scheme);
    const bool uniform =
        scheme != InitScheme::kaiming_normal && scheme != InitScheme::xavier_normal;
    if (uniform) {
      EXPECT_LE(s.max_abs, expected.bound);
      EXPECT_GE(s.max_abs, 0.99 * expected.bound);
    } else {
      EXPECT_GE(s.max_abs, 3.0 * expected.stddev);  // tails exist
    }
  }
}

TEST(Init, SameSeedSameWeightsAndBiasRules) {
  Tensor a({16, 8}), b({16, 8}), bias({16}, 5.0f);
  Generator ga(7), gb(7);
  initialize_weights(a, {}, ga);
  initialize_weights(b, {}, gb);
  EXPECT_EQ(a.values()[0], b.values()[0]);
  EXPECT_TRUE(std::equal(a.values().begin(), a.values().end(), b.values().begin()));
  initialize_bias(bias, a.dims(), {}, ga);
  EXPECT_EQ(bias.data()[3], 0.0f);
  initialize_bias(bias, a.dims(), {.bias = BiasInit::pytorch_default}, ga);
  const auto s = stats_of(bias);
  EXPECT_LE(s.max_abs, 1.0 / std::sqrt(8.0));
  EXPECT_GT(s.max_abs, 0.0);
}

TEST(Generator, IsDeterministicAndUniform) {
  Generator a(123), b(123), c(124);
  EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(a.next(), c.next());
  // splitmix64's first output for state 0, from its reference implementation.
  std::uint64_t state = 0;
  EXPECT_EQ(splitmix64(state), 0xe220a8397b1dcdafULL);
  Generator g(9);
  double sum = 0.0;
  std::array<int, 5> below{};
  for (int i = 0; i < 100000; ++i) {
    const double u = g.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ++below[g.below(5)];
  }
  EXPECT_NEAR(sum / 100000.0, 0.5, 0.005);
  for (const int count : below)
    EXPECT_NEAR(count, 20000, 600);
  const auto saved = g.state();
  const auto next = g.next();
  g.set_state(saved);
  EXPECT_EQ(g.next(), next);
}

}  // namespace
}  // namespace cajal::engine::train
