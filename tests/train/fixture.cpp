#include "tests/train/fixture.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace cajal::engine::train::testing {

nlohmann::json read_fixture(const std::string& name) {
  const std::string path = std::string(CAJAL_TRAIN_FIXTURES) + "/" + name + ".json";
  std::ifstream file(path);
  if (!file)
    throw Error("fixture " + path, "a readable file", "cannot open");
  return nlohmann::json::parse(file);
}

Tensor tensor_from_json(const nlohmann::json& j) {
  return Tensor(j.at("dims").get<Dims>(), j.at("values").get<std::vector<float>>());
}

double relative_error(const Tensor& got, const Tensor& expected) {
  if (got.dims() != expected.dims())
    return std::numeric_limits<double>::infinity();
  double scale = 1e-30;
  double worst = 0.0;
  for (std::int64_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::abs(double{expected.data()[i]}));
    worst = std::max(worst, std::abs(double{got.data()[i]} - double{expected.data()[i]}));
  }
  return worst / scale;
}

}  // namespace cajal::engine::train::testing
