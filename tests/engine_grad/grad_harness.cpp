#include "tests/engine_grad/grad_harness.h"

#include <cmath>
#include <sstream>

#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/layers/reshape.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine::testing {
namespace {

std::unique_ptr<Layer> make_layer(Backend backend, const GradCase& c, const WeightMap& weights,
                                  const Context& ctx, std::uint64_t dropout_seed) {
  auto layer = create_layer(c.type, "layer", backend);
  layer->load_params(c.params);
  layer->load_weights(weights);
  layer->set_training(c.training);
  layer->prepare(ctx, c.inputs);
  if (c.type == LayerType::dropout) {
    dynamic_cast<ReshapeLayer&>(*layer).set_seed(dropout_seed);
  }
  return layer;
}

std::vector<const Tensor*> pointers(const std::vector<Tensor>& tensors) {
  std::vector<const Tensor*> result;
  for (const auto& t : tensors) {
    result.push_back(&t);
  }
  return result;
}

// sum((after - before) * weights), in double: values that did not move add exactly nothing.
double loss_change(const Tensor& after, const Tensor& before, const Tensor& weights) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < after.size(); ++i) {
    sum += (static_cast<double>(after.data()[i]) - before.data()[i]) * weights.data()[i];
  }
  return sum;
}

// Central difference of the loss for one value, re-running `forward` with it moved both ways.
template <typename Forward>
double central_difference(float& value, double step, const Tensor& diff_dst, Forward forward) {
  const float original = value;
  value = static_cast<float>(original + step);
  const float up = value;
  const Tensor plus = forward();
  value = static_cast<float>(original - step);
  const float down = value;
  const Tensor minus = forward();
  value = original;
  // The step that float actually took, not the one asked for.
  return loss_change(plus, minus, diff_dst) / (static_cast<double>(up) - down);
}

}  // namespace

void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.name;
}

GradProblem make_problem(const GradCase& c, std::uint32_t seed) {
  GradProblem problem;
  auto probe = create_layer(c.type, "layer", Backend::reference);
  probe->load_params(c.params);
  problem.weights = random_weights(*probe, seed + 100);
  for (const auto& dims : c.inputs) {
    auto input = random_tensor(dims, seed++);
    for (auto& v : input.values()) {
      v += v < 0 ? -c.min_abs_input : c.min_abs_input;
    }
    problem.inputs.push_back(std::move(input));
  }
  probe->load_weights(problem.weights);
  const Context ctx(1);
  probe->prepare(ctx, c.inputs);
  problem.diff_dst = random_tensor(probe->dst_dims(), seed + 200);
  return problem;
}

GradResult run_backward(Backend backend, const GradCase& c, const GradProblem& problem, int threads,
                        std::uint64_t dropout_seed) {
  const Context ctx(threads);
  auto layer = make_layer(backend, c, problem.weights, ctx, dropout_seed);
  GradResult result;
  result.dst = Tensor(layer->dst_dims(), NAN);
  const auto src = pointers(problem.inputs);
  layer->forward(src, result.dst);
  std::vector<Tensor*> diff_src;
  for (const auto& input : problem.inputs) {
    result.diff_src.emplace_back(input.dims(), NAN);
  }
  for (auto& d : result.diff_src) {
    diff_src.push_back(&d);
  }
  layer->zero_grad();
  layer->backward(src, result.dst, problem.diff_dst, diff_src);
  for (const auto& role : layer->trainable_roles()) {
    result.grads[role] = layer->grad(role);
  }
  for (const auto& spec : layer->weight_specs()) {
    result.weights[spec.role] = layer->weight(spec.role);
  }
  return result;
}

std::map<std::string, double> compare_with_twin(const GradCase& c, std::uint32_t seed) {
  const auto problem = make_problem(c, seed);
  const auto onednn = run_backward(Backend::onednn, c, problem);
  const auto twin = run_backward(Backend::reference, c, problem);
  std::map<std::string, double> errors;
  errors["dst"] = relative_error(onednn.dst, twin.dst);
  for (std::size_t i = 0; i < twin.diff_src.size(); ++i) {
    errors["diff_src" + std::to_string(i)] = relative_error(onednn.diff_src[i], twin.diff_src[i]);
  }
  for (const auto& [role, g] : twin.grads) {
    errors["grad." + role] =
        onednn.grads.contains(role) ? relative_error(onednn.grads.at(role), g) : INFINITY;
  }
  for (const auto& [role, w] : twin.weights) {
    errors["weight." + role] = relative_error(onednn.weights.at(role), w);
  }
  return errors;
}

std::map<std::string, double> compare_with_finite_differences(const GradCase& c, std::uint32_t seed,
                                                              double step) {
  auto problem = make_problem(c, seed);
  const auto analytic = run_backward(Backend::reference, c, problem);
  const Context ctx(1);
  auto layer = make_layer(Backend::reference, c, problem.weights, ctx, 1);
  const auto forward = [&] {
    if (c.type == LayerType::dropout) {
      dynamic_cast<ReshapeLayer&>(*layer).set_seed(1);  // the same mask every time
    }
    Tensor dst(layer->dst_dims(), NAN);
    layer->forward(pointers(problem.inputs), dst);
    return dst;
  };
  std::map<std::string, double> errors;
  for (std::size_t s = 0; s < problem.inputs.size(); ++s) {
    Tensor numeric(problem.inputs[s].dims());
    for (std::int64_t i = 0; i < numeric.size(); ++i) {
      numeric.data()[i] = static_cast<float>(
          central_difference(problem.inputs[s].data()[i], step, problem.diff_dst, forward));
    }
    errors["diff_src" + std::to_string(s)] = relative_error(numeric, analytic.diff_src[s]);
  }
  for (const auto& role : layer->trainable_roles()) {
    Tensor numeric(layer->weight(role).dims());
    auto& values = layer->mutable_weight(role);
    for (std::int64_t i = 0; i < numeric.size(); ++i) {
      numeric.data()[i] =
          static_cast<float>(central_difference(values.data()[i], step, problem.diff_dst, [&] {
            layer->weights_changed();
            return forward();
          }));
    }
    layer->weights_changed();
    errors["grad." + role] = relative_error(numeric, analytic.grads.at(role));
  }
  return errors;
}

::testing::AssertionResult all_within(const std::map<std::string, double>& errors,
                                      double tolerance) {
  std::ostringstream out;
  bool ok = true;
  for (const auto& [name, error] : errors) {
    if (!(error <= tolerance)) {
      ok = false;
      out << name << ": relative error " << error << " > " << tolerance << "; ";
    }
  }
  if (ok) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << out.str();
}

}  // namespace cajal::engine::testing
