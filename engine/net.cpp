#include "engine/net.h"

#include "engine/detail/dnnl_util.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "core/error.h"
#include "engine/layers/channel.h"
#include "engine/layers/common.h"
#include "engine/layers/convolution.h"
#include "engine/layers/eltwise.h"
#include "engine/layers/normalization.h"
#include "engine/layers/pooling.h"

namespace cajal::engine {
namespace {

// Gradients of a blob read by several layers (a U-Net's skips) of this many values or more are
// summed on OpenMP's threads.
constexpr std::int64_t kParallelSumFrom = 16384;

// sum += added, value by value: any split over the threads gives the same bytes.
void add_values(Tensor& sum, const Tensor& added) {
  float* const values = sum.data();
  const float* const more = added.data();
  const std::int64_t count = sum.size();
#pragma omp parallel for schedule(static) if (count >= kParallelSumFrom)
  for (std::int64_t v = 0; v < count; ++v) {
    values[v] += more[v];
  }
}

// Of `count` buffers, capacity(s) values each (negative: not free), the one that holds `need`
// values most closely, else the largest (to grow); `count` when none is free. The activation
// planner's slots and backward()'s spare gradients both choose so.
template <typename Capacity>
std::size_t closest_fit(std::size_t count, std::int64_t need, Capacity capacity) {
  std::size_t best = count;
  for (std::size_t s = 0; s < count; ++s) {
    const std::int64_t held = capacity(s);
    if (held < 0) {
      continue;
    }
    const std::int64_t best_held = best == count ? 0 : capacity(best);
    const bool fits = held >= need;
    if (best == count || (fits && (best_held < need || held < best_held)) ||
        (!fits && best_held < need && held > best_held)) {
      best = s;
    }
  }
  return best;
}

}  // namespace

Net::Net(std::vector<std::string> inputs, std::vector<Node> nodes, std::vector<std::string> outputs,
         NetOptions options)
    : inputs_(std::move(inputs)),
      nodes_(std::move(nodes)),
      outputs_(std::move(outputs)),
      options_(options) {
  std::set<std::string> blobs;
  for (const auto& input : inputs_) {
    if (!blobs.insert(input).second) {
      throw Error("net input '" + input + "'", "a unique blob name", "a repeated one");
    }
  }
  std::set<std::string> names;
  for (const auto& node : nodes_) {
    CAJAL_CHECK(node.layer != nullptr) << "a node without a layer";
    const auto& label = node.layer->label();
    if (!names.insert(node.layer->name()).second) {
      throw Error(label, "a unique layer name",
                  "a second layer named '" + node.layer->name() + "'");
    }
    if (node.inputs.empty()) {
      throw Error(label + ": inputs", "at least one blob", "none");
    }
    for (const auto& input : node.inputs) {
      if (!blobs.contains(input)) {
        throw Error(label + ": input blob '" + input + "'",
                    "a net input or the output of an earlier layer", "no such blob");
      }
    }
    if (!blobs.insert(node.output).second) {
      throw Error(label + ": output blob '" + node.output + "'", "a blob written only once",
                  "a blob that already exists");
    }
  }
  if (outputs_.empty()) {
    throw Error("net outputs", "at least one blob", "none");
  }
  for (const auto& output : outputs_) {
    if (!blobs.contains(output)) {
      throw Error("net output '" + output + "'", "a blob of the net", "no such blob");
    }
  }
}

void Net::load_weights(const WeightMap& weights) {
  CAJAL_CHECK(!weights_loaded_) << "Net::load_weights called twice (folding changed the layers)";
  weights_loaded_ = true;
  std::set<std::string> taken;
  parameter_count_ = 0;
  for (auto& node : nodes_) {
    for (auto& name : node.layer->load_weights(weights)) {
      parameter_count_ += weights.at(name).size();
      taken.insert(std::move(name));
    }
  }
  for (const auto& [name, tensor] : weights) {
    if (!taken.contains(name)) {
      throw Error("tensor '" + name + "'",
                  "only tensors the layers take (" + std::to_string(taken.size()) + " of them)",
                  "an extra tensor of shape " + to_string(tensor.dims()));
    }
  }
  fold_and_fuse();
}

void Net::fold_and_fuse() {
  std::vector<Node> kept;
  for (auto& node : nodes_) {
    Layer* last = kept.empty() ? nullptr : kept.back().layer.get();
    auto* conv = dynamic_cast<ConvolutionLayer*>(last);
    auto* norm = dynamic_cast<NormalizationLayer*>(last);
    if ((conv != nullptr && fuse_into(*conv, kept.back(), node)) ||
        (norm != nullptr && fuse_into(*norm, kept.back(), node))) {
      rewritten_ = true;
    } else {
      kept.push_back(std::move(node));
    }
  }
  nodes_ = std::move(kept);
}

bool Net::read_by_one_layer_only(const std::string& blob) const {
  const auto readers = std::count_if(nodes_.begin(), nodes_.end(), [&](const Node& other) {
    return other.layer && std::count(other.inputs.begin(), other.inputs.end(), blob) > 0;
  });
  return readers == 1 && std::count(outputs_.begin(), outputs_.end(), blob) == 0;
}

bool Net::fuse_into(NormalizationLayer& norm, Node& norm_node, const Node& node) {
  const auto& blob = norm_node.output;
  if (!options_.fuse_post_ops || !read_by_one_layer_only(blob) ||
      node.inputs != std::vector<std::string>{blob}) {
    return false;
  }
  const auto channels = static_cast<std::size_t>(norm.params().channels);
  std::vector<float> slopes;
  const auto type = node.layer->type();
  if (type == LayerType::relu || type == LayerType::leaky_relu) {
    slopes.assign(channels, dynamic_cast<const EltwiseLayer&>(*node.layer).activation().alpha);
  } else if (type == LayerType::prelu) {
    const Tensor& weight = node.layer->weight("weight");
    for (std::size_t c = 0; c < channels; ++c) {
      slopes.push_back(weight.data()[weight.size() == 1 ? 0 : static_cast<std::int64_t>(c)]);
    }
  } else {
    return false;
  }
  if (!norm.fuse_activation(std::move(slopes))) {
    return false;
  }
  norm_node.output = node.output;
  return true;
}

bool Net::fuse_into(ConvolutionLayer& conv, Node& conv_node, const Node& node) {
  // Only when the convolution's output goes nowhere else.
  const auto& blob = conv_node.output;
  if (!read_by_one_layer_only(blob)) {
    return false;
  }
  const auto type = node.layer->type();
  const bool reads_only_blob = node.inputs == std::vector<std::string>{blob};
  const auto* activation = dynamic_cast<const EltwiseLayer*>(node.layer.get());
  if (type == LayerType::batch_norm && options_.fold_batch_norm && reads_only_blob &&
      conv.post_ops().empty()) {
    std::vector<float> scale;
    std::vector<float> shift;
    dynamic_cast<const NormalizationLayer&>(*node.layer).scale_shift(scale, shift);
    conv.fold_scale_shift(scale, shift);
  } else if (activation != nullptr && options_.fuse_post_ops && reads_only_blob) {
    conv.fuse(activation->activation());
  } else if (type == LayerType::add && options_.fuse_post_ops && node.inputs.size() == 2 &&
             node.inputs[0] != node.inputs[1] &&
             (node.inputs[0] == blob || node.inputs[1] == blob) && !conv.adds_residual()) {
    // The other input is the residual the primitive adds to its output.
    conv.fuse({LayerType::add, 0.0f});
    conv_node.inputs.push_back(node.inputs[0] == blob ? node.inputs[1] : node.inputs[0]);
  } else if ((type == LayerType::max_pool || type == LayerType::avg_pool) &&
             options_.fuse_post_ops && reads_only_blob) {
    const PoolingParams& pool = dynamic_cast<const PoolingLayer&>(*node.layer).params();
    if (!conv.fuse_pool(type, pool.kernel_size, pool.stride, pool.padding)) {
      return false;
    }
  } else {
    return false;
  }
  conv_node.output = node.output;
  return true;
}

void Net::prepare(const Context& ctx, const std::map<std::string, Dims>& input_dims) {
  CAJAL_CHECK(weights_loaded_) << "Net::prepare before load_weights";
  blob_dims_.clear();
  blobs_.clear();
  spare_diffs_.clear();
  for (const auto& input : inputs_) {
    const auto found = input_dims.find(input);
    if (found == input_dims.end()) {
      throw Error("net input '" + input + "'", "dims to prepare for", "none");
    }
    blob_dims_[input] = found->second;
  }
  if (training_) {
    // Every activation kept for backward(): one buffer per blob.
    output_slot_.clear();
    arena_.assign(nodes_.size(), Tensor());
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto& node = nodes_[i];
      std::vector<Dims> src;
      for (const auto& input : node.inputs) {
        src.push_back(blob_dims_.at(input));
      }
      blob_dims_[node.output] = node.layer->prepare(ctx, src);
      arena_[i].reserve(element_count(blob_dims_[node.output]));
      output_slot_.push_back(i);
    }
    release_after_.assign(nodes_.size(), {});
    in_place_.assign(nodes_.size(), {});
    concat_in_place_.assign(nodes_.size(), false);
    fuse_relus_into_batch_norms();
    link_training_layouts();
    plan_training_concats_in_place();
    planned_bytes_ = resident_bytes();
    peak_bytes_ = planned_bytes_;
    prepared_ = true;
    return;
  }
  relu_in_batch_norm_.assign(nodes_.size(), false);
  std::map<std::string, std::size_t> last_read;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    for (const auto& input : nodes_[i].inputs) {
      last_read[input] = i;
    }
  }
  for (const auto& output : outputs_) {
    last_read[output] = std::numeric_limits<std::size_t>::max();
  }
  // Per node: the blob it writes, the last node that reads that blob (itself when none does), and
  // the bytes its layout copies (SharedScratch's policy) and its primitive's scratchpad hold while
  // it runs.
  std::vector<std::int64_t> written(nodes_.size());
  std::vector<std::size_t> live_until(nodes_.size());
  std::vector<std::int64_t> scratch_bytes(nodes_.size());
  auto& bridge_in = ctx.impl()->bridge_in;
  auto& bridge_out = ctx.impl()->bridge_out;
  const auto& scratchpad = ctx.impl()->scratchpad;
  const bool release = options_.release_bytes < std::numeric_limits<std::int64_t>::max();
  ctx.impl()->single_pass = release;
  std::size_t held_in = 0;
  std::size_t held_out = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto& node = nodes_[i];
    std::vector<Dims> src;
    for (const auto& input : node.inputs) {
      src.push_back(blob_dims_.at(input));
    }
    bridge_in.take_planned();
    bridge_out.take_planned();
    scratchpad.take_planned();
    const Dims dst = node.layer->prepare(ctx, src);
    for (auto [scratch, held] :
         {std::pair{&bridge_in, &held_in}, std::pair{&bridge_out, &held_out}}) {
      if (const std::size_t request = scratch->take_planned(); request > 0) {
        *held = detail::SharedScratch::held_after(*held, request, release);
      }
    }
    scratch_bytes[i] = static_cast<std::int64_t>(held_in + held_out + scratchpad.take_planned());
    blob_dims_[node.output] = dst;
    written[i] = element_count(dst);
    live_until[i] = last_read.contains(node.output) ? last_read.at(node.output) : i;
  }
  plan_concats_in_place(last_read);
  link_blocked_convolutions();
  // Where a concat is written in place, its buffer is taken by the first layer that writes into
  // it and held until the concat's blob is dead; the layers writing into it hold nothing of
  // their own.
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (in_place_[i].concat == kNone) {
      continue;
    }
    const std::size_t c = in_place_[i].concat;
    written[i] = in_place_[i].first ? written[c] : 0;
    live_until[i] = in_place_[i].first ? live_until[c] : i;
  }
  for (std::size_t c = 0; c < nodes_.size(); ++c) {
    if (concat_in_place_[c]) {
      written[c] = 0;
    }
  }
  // Plan: each blob takes a free slot (the smallest that fits, else the largest, which grows).
  std::vector<std::int64_t> capacity;
  std::vector<bool> busy;
  std::map<std::string, std::size_t> slot_of;
  output_slot_.assign(nodes_.size(), 0);
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const auto& node = nodes_[i];
    const std::size_t c = in_place_[i].concat;
    const std::string& owner = c == kNone ? node.output : nodes_[c].output;
    if (!slot_of.contains(owner)) {
      const auto need = element_count(blob_dims_.at(owner));
      std::size_t best = closest_fit(capacity.size(), need, [&](std::size_t s) {
        return busy[s] ? std::int64_t{-1} : capacity[s];
      });
      if (best == capacity.size()) {
        capacity.push_back(0);
        busy.push_back(false);
      }
      capacity[best] = std::max(capacity[best], need);
      busy[best] = true;
      slot_of[owner] = best;
    }
    output_slot_[i] = slot_of.at(owner);
    for (const auto& blob : node.inputs) {
      if (slot_of.contains(blob) && last_read.at(blob) == i) {
        busy[slot_of.at(blob)] = false;
      }
    }
    if (c == kNone && !last_read.contains(node.output)) {
      busy[output_slot_[i]] = false;  // nothing reads it
    }
  }
  constexpr auto kFloat = static_cast<std::int64_t>(sizeof(float));
  const auto released = [&](std::size_t slot) {
    return capacity[slot] * kFloat >= options_.release_bytes;
  };
  // Freed after the last reader (the writer, when nothing reads the blob); graph outputs never.
  // A concat written in place is freed for the concat's blob, not for the blobs inside it.
  release_after_.assign(nodes_.size(), {});
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (released(output_slot_[i]) && in_place_[i].concat == kNone &&
        live_until[i] != std::numeric_limits<std::size_t>::max()) {
      release_after_[live_until[i]].push_back(output_slot_[i]);
    }
  }
  planned_bytes_ = 0;
  std::int64_t kept = 0;  // slots under release_bytes: resident for the whole pass
  for (std::size_t s = 0; s < capacity.size(); ++s) {
    planned_bytes_ += capacity[s] * kFloat;
    kept += released(s) ? 0 : capacity[s] * kFloat;
  }
  peak_bytes_ = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    std::int64_t live = kept + scratch_bytes[i];
    for (std::size_t b = 0; b <= i; ++b) {
      live += released(output_slot_[b]) && live_until[b] >= i ? written[b] * kFloat : 0;
    }
    peak_bytes_ = std::max(peak_bytes_, live);
  }
  // The bridges' scratch was sized for the previous dims.
  bridge_in.release();
  bridge_out.release();
  scratchpad.release();
  // A fresh arena: assigning over the old one would keep each slot's capacity.
  arena_.clear();
  arena_.resize(capacity.size());
  for (std::size_t s = 0; s < capacity.size(); ++s) {
    arena_[s].reserve(capacity[s]);
  }
  prepared_ = true;
}

void Net::fuse_relus_into_batch_norms() {
  relu_in_batch_norm_.assign(nodes_.size(), false);
  std::map<std::string, std::size_t> writer;
  std::map<std::string, int> reads;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    writer[nodes_[i].output] = i;
    for (const auto& input : nodes_[i].inputs) {
      ++reads[input];
    }
  }
  for (auto& node : nodes_) {
    if (auto* const norm = dynamic_cast<NormalizationLayer*>(node.layer.get())) {
      norm->fuse_relu_in_training(false);
    }
  }
  for (std::size_t j = 0; j < nodes_.size(); ++j) {
    if (nodes_[j].layer->type() != LayerType::relu || nodes_[j].inputs.size() != 1) {
      continue;
    }
    const std::string& blob = nodes_[j].inputs[0];
    const auto found = writer.find(blob);
    if (found == writer.end() || reads.at(blob) != 1 ||
        std::count(outputs_.begin(), outputs_.end(), blob) > 0) {
      continue;  // a net input, read by another layer too, or a net output
    }
    auto* const norm = dynamic_cast<NormalizationLayer*>(nodes_[found->second].layer.get());
    if (norm != nullptr && norm->fuse_relu_in_training(true)) {
      relu_in_batch_norm_[j] = true;
      arena_[output_slot_[j]] = Tensor();  // the ReLU's blob is the batch norm's
    }
  }
}

void Net::link_training_layouts() {
  training_layout_links_ = 0;
  // Only where batch norm's kernels on those layouts run by AVX-512 intrinsics: their portable
  // vectors (as GCC compiled them for AVX-512 here) took twice the plain layout's loops' time.
  if (!options_.blocked_training_layouts || !detail::avx512_kernels()) {
    return;
  }
  std::map<std::string, std::size_t> writer;
  std::map<std::string, std::vector<std::pair<std::size_t, std::size_t>>> readers;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    writer[nodes_[i].output] = i;
    for (std::size_t k = 0; k < nodes_[i].inputs.size(); ++k) {
      readers[nodes_[i].inputs[k]].emplace_back(i, k);
    }
  }
  const auto inner = [&](const std::string& blob) {
    return std::count(outputs_.begin(), outputs_.end(), blob) == 0 &&
           std::count(inputs_.begin(), inputs_.end(), blob) == 0;
  };
  // The convolution that alone reads `blob`, as its source; null if there is none.
  const auto sole_convolution = [&](const std::string& blob) -> ConvolutionLayer* {
    const auto& reads = readers[blob];
    if (!inner(blob) || reads.size() != 1 || reads[0].second != 0) {
      return nullptr;
    }
    return dynamic_cast<ConvolutionLayer*>(nodes_[reads[0].first].layer.get());
  };
  for (std::size_t j = 0; j < nodes_.size(); ++j) {
    // A concat that alone a convolution reads, as its source; then each of its inputs that a
    // convolution writes for it alone (a U-Net's up-convolution), in the same blocks.
    auto* const concat = dynamic_cast<ChannelLayer*>(nodes_[j].layer.get());
    if (concat != nullptr) {
      auto* const conv = sole_convolution(nodes_[j].output);
      const std::int64_t block = conv != nullptr ? conv->training_input_block() : 0;
      if (conv == nullptr || !concat->write_blocked_in_training(block)) {
        continue;
      }
      conv->read_blocked_in_training();
      ++training_layout_links_;
      for (std::size_t k = 0; k < nodes_[j].inputs.size(); ++k) {
        const std::string& in = nodes_[j].inputs[k];
        if (!inner(in) || !writer.contains(in) || readers[in].size() != 1) {
          continue;
        }
        auto* const up = dynamic_cast<ConvolutionLayer*>(nodes_[writer.at(in)].layer.get());
        if (up != nullptr && up->training_output_block() == block &&
            concat->read_blocked_input(k, block)) {
          up->write_blocked_in_training();
          ++training_layout_links_;
        }
      }
    }
  }
  // A U-Net's skip: read by a max pooling that tiles it, whose output a convolution alone reads,
  // and by a concat linked above (as its input `input`).
  struct Skip {
    PoolingLayer* pool = nullptr;
    ConvolutionLayer* after_pool = nullptr;
    ChannelLayer* concat = nullptr;
    std::size_t input = 0;
  };
  const auto skip_of = [&](const std::string& blob) {
    const auto& reads = readers[blob];
    Skip skip;
    if (!inner(blob) || reads.size() != 2) {
      return Skip{};
    }
    for (const auto& [node, input] : reads) {
      auto* const layer = nodes_[node].layer.get();
      if (auto* const pool = dynamic_cast<PoolingLayer*>(layer)) {
        skip.pool = pool;
        skip.after_pool = sole_convolution(nodes_[node].output);
      } else if (auto* const cat = dynamic_cast<ChannelLayer*>(layer)) {
        skip.concat = cat;
        skip.input = input;
      }
    }
    if (skip.pool == nullptr || skip.after_pool == nullptr || skip.concat == nullptr) {
      return Skip{};
    }
    const std::int64_t block = skip.concat->training_block();
    if (block == 0 || skip.after_pool->training_input_block() != block ||
        !skip.pool->can_take_blocked_in_training(block)) {
      return Skip{};
    }
    return skip;
  };
  for (std::size_t j = 0; j < nodes_.size(); ++j) {
    auto* const norm = dynamic_cast<NormalizationLayer*>(nodes_[j].layer.get());
    if (norm == nullptr || nodes_[j].inputs.size() != 1) {
      continue;
    }
    // Before it: the convolution that writes its input, which it alone reads.
    const std::string& in = nodes_[j].inputs[0];
    ConvolutionLayer* before = nullptr;
    if (inner(in) && writer.contains(in) && readers[in].size() == 1) {
      before = dynamic_cast<ConvolutionLayer*>(nodes_[writer.at(in)].layer.get());
    }
    // After it, or after the ReLU it applies: a convolution that alone reads that, as its source.
    std::string out = nodes_[j].output;
    if (readers[out].size() == 1 && relu_in_batch_norm_[readers[out][0].first]) {
      out = nodes_[readers[out][0].first].output;
    }
    ConvolutionLayer* const after = sole_convolution(out);
    const Skip skip = after == nullptr ? skip_of(out) : Skip{};
    const std::int64_t in_block = before != nullptr ? before->training_output_block() : 0;
    const std::int64_t out_block = after != nullptr         ? after->training_input_block()
                                   : skip.concat != nullptr ? skip.concat->training_block()
                                                            : 0;
    if ((in_block == 0 && out_block == 0) ||
        !norm->take_layouts_in_training(std::max<std::int64_t>(in_block, 1),
                                        std::max<std::int64_t>(out_block, 1))) {
      continue;
    }
    if (in_block > 0) {
      before->write_blocked_in_training();
      ++training_layout_links_;
    }
    if (out_block > 0 && after != nullptr) {
      after->read_blocked_in_training();
      ++training_layout_links_;
    }
    if (out_block > 0 && skip.concat != nullptr) {
      skip.pool->take_blocked_in_training(out_block);
      skip.after_pool->read_blocked_in_training();
      const bool read = skip.concat->read_blocked_input(skip.input, out_block);
      CAJAL_CHECK(read) << "concat of a linked skip";
      training_layout_links_ += 2;
    }
  }
}

void Net::plan_training_concats_in_place() {
  concat_copies_.assign(nodes_.size(), {});
  views_.assign(nodes_.size(), Tensor());
  std::map<std::string, std::size_t> writer;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    writer[nodes_[i].output] = i;
  }
  for (std::size_t c = 0; c < nodes_.size(); ++c) {
    const auto* const concat = dynamic_cast<const ChannelLayer*>(nodes_[c].layer.get());
    if (concat == nullptr || !concat->all_inputs_blocked() ||
        blob_dims_.at(nodes_[c].output).at(0) != 1) {
      continue;
    }
    // The node that writes each input: a batch norm for the ReLU it applies.
    std::vector<std::size_t> writers;
    for (const auto& input : nodes_[c].inputs) {
      if (!writer.contains(input)) {
        break;
      }
      std::size_t w = writer.at(input);
      if (relu_in_batch_norm_[w]) {
        w = writer.at(nodes_[w].inputs[0]);
      }
      const bool alone = std::count(writers.begin(), writers.end(), w) == 0;
      if (!alone || in_place_[w].concat != kNone || concat_in_place_[w]) {
        break;
      }
      writers.push_back(w);
    }
    if (writers.size() != nodes_[c].inputs.size()) {
      continue;
    }
    concat_in_place_[c] = true;
    const std::size_t first = *std::min_element(writers.begin(), writers.end());
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < writers.size(); ++k) {
      const std::size_t w = writers[k];
      in_place_[w] = {.concat = c, .offset = offset, .first = w == first};
      output_slot_[w] = c;
      arena_[w] = Tensor();  // its values live in the concat's buffer
      offset += element_count(blob_dims_.at(nodes_[c].inputs[k]));
    }
  }
}

void Net::link_blocked_convolutions() {
  blocked_links_ = 0;
  // Every read of a blob, each by a convolution not in place into a concat (a residual block's
  // output is read by the next block's first convolution and added by its last, or by a 1x1
  // shortcut); empty when another layer reads it, or when it is a graph output.
  const auto conv_readers = [&](const std::string& blob, std::size_t skip = kNone) {
    std::vector<ConvolutionLayer::BlockedReader> readers;
    if (std::count(outputs_.begin(), outputs_.end(), blob) > 0) {
      return readers;
    }
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      for (std::size_t k = 0; k < nodes_[j].inputs.size(); ++k) {
        if (j == skip || nodes_[j].inputs[k] != blob) {
          continue;
        }
        auto* const reader = dynamic_cast<ConvolutionLayer*>(nodes_[j].layer.get());
        if (reader == nullptr || concat_in_place_[j]) {
          return std::vector<ConvolutionLayer::BlockedReader>{};
        }
        readers.push_back({reader, k});
      }
    }
    return readers;
  };
  // The node of the norm or pooling that alone reads a blob, not in place into a concat; else
  // kNone.
  const auto sole_middle = [&](const std::string& blob) {
    std::size_t found = kNone;
    for (std::size_t j = 0; j < nodes_.size(); ++j) {
      const auto reads = std::count(nodes_[j].inputs.begin(), nodes_[j].inputs.end(), blob);
      if (reads == 0) {
        continue;
      }
      const Layer* const layer = nodes_[j].layer.get();
      if (found != kNone || reads > 1 || in_place_[j].concat != kNone ||
          (dynamic_cast<const NormalizationLayer*>(layer) == nullptr &&
           dynamic_cast<const PoolingLayer*>(layer) == nullptr)) {
        return kNone;
      }
      found = j;
    }
    return found;
  };
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto* const conv = dynamic_cast<ConvolutionLayer*>(nodes_[i].layer.get());
    const std::string& blob = nodes_[i].output;
    if (conv == nullptr || in_place_[i].concat != kNone ||
        std::count(outputs_.begin(), outputs_.end(), blob) > 0) {
      continue;
    }
    if (const auto readers = conv_readers(blob); !readers.empty()) {
      blocked_links_ += conv->pass_blocked_to(readers) ? readers.size() : 0;
      continue;
    }
    // Through an instance norm or a max pooling: conv -> it -> convolutions.
    const std::size_t m = sole_middle(blob);
    if (m == kNone) {
      continue;
    }
    const auto readers = conv_readers(nodes_[m].output);
    if (!readers.empty() && conv->pass_blocked_through(*nodes_[m].layer, readers)) {
      blocked_links_ += readers.size() + 1;
    } else if (readers.empty() && conv->pass_blocked_into(*nodes_[m].layer)) {
      blocked_links_ += 1;  // a pooling that writes PyTorch's layout for the layers after it
    }
  }
  // Written in place into a concat and read by convolutions too: its own blob, blocked, for
  // them, copied into the concat by the concat; only where another input keeps the concat's
  // buffer.
  concat_copies_.assign(nodes_.size(), {});
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto* const conv = dynamic_cast<ConvolutionLayer*>(nodes_[i].layer.get());
    const InPlace part = in_place_[i];
    if (conv == nullptr || part.concat == kNone) {
      continue;
    }
    const auto in_place = [&](std::size_t j) {
      return j != i && in_place_[j].concat == part.concat;
    };
    std::size_t j = 0;
    while (j < nodes_.size() && !in_place(j)) {
      ++j;
    }
    const auto readers = conv_readers(nodes_[i].output, part.concat);
    if (j == nodes_.size() || readers.empty() || !conv->pass_blocked_to(readers)) {
      continue;
    }
    in_place_[i] = {};
    in_place_[j].first = in_place_[j].first || part.first;  // j runs first of those left
    concat_copies_[part.concat].push_back({i, part.offset});
    blocked_links_ += readers.size();
  }
}

void Net::plan_concats_in_place(const std::map<std::string, std::size_t>& last_read) {
  in_place_.assign(nodes_.size(), {});
  concat_in_place_.assign(nodes_.size(), false);
  views_.assign(nodes_.size(), Tensor());
  std::map<std::string, std::size_t> writer;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    writer[nodes_[i].output] = i;
  }
  const std::set<std::string> outputs(outputs_.begin(), outputs_.end());
  for (std::size_t c = 0; c < nodes_.size(); ++c) {
    const auto& node = nodes_[c];
    if (node.layer->type() != LayerType::concat || blob_dims_.at(node.output).at(0) != 1) {
      continue;
    }
    // The concat's buffer lives until its own blob's last reader: each input must be dead by then
    // (a U-Net's skip is also read by the next stage's downsampling, which is fine).
    const auto dead_by = last_read.contains(node.output) ? last_read.at(node.output) : c;
    const std::set<std::string> distinct(node.inputs.begin(), node.inputs.end());
    const bool in_place = distinct.size() == node.inputs.size() &&
                          std::all_of(node.inputs.begin(), node.inputs.end(), [&](const auto& b) {
                            const auto w = writer.find(b);
                            return w != writer.end() && !outputs.contains(b) &&
                                   last_read.at(b) <= dead_by &&
                                   nodes_[w->second].layer->type() != LayerType::concat &&
                                   in_place_[w->second].concat == kNone;
                          });
    if (!in_place) {
      continue;
    }
    concat_in_place_[c] = true;
    std::size_t first = kNone;
    for (const auto& input : node.inputs) {
      first = std::min(first, writer.at(input));
    }
    std::int64_t offset = 0;
    for (const auto& input : node.inputs) {
      const std::size_t w = writer.at(input);
      in_place_[w] = {.concat = c, .offset = offset, .first = w == first};
      offset += element_count(blob_dims_.at(input));
    }
  }
}

std::map<std::string, Tensor> Net::forward(const std::map<std::string, Tensor>& inputs) {
  CAJAL_CHECK(prepared_) << "Net::forward before prepare";
  if (training_) {
    weights_changed();  // an optimiser may have changed them in place since the last step
  }
  std::map<std::string, const Tensor*> blobs;
  for (const auto& input : inputs_) {
    const auto found = inputs.find(input);
    if (found == inputs.end()) {
      throw Error("net input '" + input + "'", "a tensor", "none");
    }
    if (found->second.dims() != blob_dims_.at(input)) {
      throw Error("net input '" + input + "'", "dims " + to_string(blob_dims_.at(input)),
                  to_string(found->second.dims()));
    }
    blobs[input] = &found->second;
    if (training_) {
      input_copies_[input] = found->second;
      blobs[input] = &input_copies_[input];
    }
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const auto& node = nodes_[i];
    Tensor& slot = arena_[output_slot_[i]];
    if (concat_in_place_[i]) {
      for (const auto& [writer, offset] : concat_copies_[i]) {
        dynamic_cast<const ConvolutionLayer&>(*nodes_[writer].layer)
            .copy_plain(*blobs.at(nodes_[writer].output), slot.data() + offset);
      }
      blobs[node.output] = &slot;  // its inputs wrote it, or copy_plain
    } else if (relu_in_batch_norm_[i]) {
      blobs[node.output] = blobs.at(node.inputs[0]);  // the batch norm applied it
    } else {
      std::vector<const Tensor*> src;
      for (const auto& input : node.inputs) {
        src.push_back(blobs.at(input));
      }
      Tensor* dst = &slot;
      if (const auto& part = in_place_[i]; part.concat != kNone) {
        if (part.first) {
          slot.reshape_for_overwrite(blob_dims_.at(nodes_[part.concat].output));
        }
        views_[i] = Tensor::view(slot.data() + part.offset, blob_dims_.at(node.output));
        dst = &views_[i];
      } else {
        slot.reshape_for_overwrite(blob_dims_.at(node.output));
      }
      node.layer->forward(src, *dst);
      blobs[node.output] = dst;
    }
    for (const std::size_t released : release_after_[i]) {  // none in training
      arena_[released] = Tensor();
    }
  }
  std::map<std::string, Tensor> result;
  for (const auto& output : outputs_) {
    const auto writer = std::find_if(nodes_.begin(), nodes_.end(),
                                     [&](const Node& node) { return node.output == output; });
    if (training_ || result.contains(output) || writer == nodes_.end()) {
      result[output] = *blobs.at(output);  // kept for backward(), or a graph input
    } else {
      result[output] = std::move(arena_[output_slot_[writer - nodes_.begin()]]);
    }
  }
  if (training_) {
    blobs_ = std::move(blobs);
  }
  return result;
}

const Dims& Net::blob_dims(const std::string& blob) const {
  const auto found = blob_dims_.find(blob);
  CAJAL_CHECK(found != blob_dims_.end()) << "no dims for blob '" << blob << "'";
  return found->second;
}

std::int64_t Net::flops() const {
  CAJAL_CHECK(prepared_) << "Net::flops before prepare";
  std::int64_t total = 0;
  for (const auto& node : nodes_) {
    total += node.layer->flops();
  }
  return total;
}

std::int64_t Net::activation_bytes() const {
  return planned_bytes_;
}

std::int64_t Net::resident_bytes() const {
  std::int64_t total = 0;
  for (const auto& slot : arena_) {
    total += slot.capacity() * static_cast<std::int64_t>(sizeof(float));
  }
  return total;
}

void Net::set_training(bool training) {
  if (training && (options_.fold_batch_norm || options_.fuse_post_ops)) {
    throw Error("Net::set_training",
                "a Net built with NetOptions::for_training() (no folding or fusing)",
                "folding or fusing on");
  }
  CAJAL_CHECK(!rewritten_) << "training a folded or fused Net";
  if (training != training_) {
    prepared_ = false;
  }
  training_ = training;
  for (auto& node : nodes_) {
    node.layer->set_training(training);
  }
  blobs_.clear();
  input_copies_.clear();
  spare_diffs_.clear();
}

std::map<std::string, Tensor> Net::backward(const std::map<std::string, Tensor>& diff_outputs,
                                            const std::vector<std::string>& diff_inputs) {
  CAJAL_CHECK(training_ && prepared_) << "Net::backward needs a training prepare()";
  CAJAL_CHECK(!blobs_.empty()) << "Net::backward before a training forward()";
  for (const auto& [name, diff] : diff_outputs) {
    if (std::count(outputs_.begin(), outputs_.end(), name) == 0) {
      throw Error("gradient of '" + name + "'", "a net output", "no such output");
    }
    if (diff.dims() != blob_dims_.at(name)) {
      throw Error("gradient of '" + name + "'", "dims " + to_string(blob_dims_.at(name)),
                  to_string(diff.dims()));
    }
  }
  // Blobs whose gradient something needs: a wanted input, or a blob computed from one or by a
  // layer with parameters.
  std::set<std::string> wanted;
  for (const auto& input : diff_inputs) {
    if (std::count(inputs_.begin(), inputs_.end(), input) == 0) {
      throw Error("gradient of '" + input + "'", "a net input", "no such input");
    }
    wanted.insert(input);
  }
  for (const auto& node : nodes_) {
    const bool trains = !frozen(*node.layer) && !node.layer->trainable_roles().empty();
    const bool from_wanted = std::any_of(node.inputs.begin(), node.inputs.end(),
                                         [&](const auto& blob) { return wanted.contains(blob); });
    if (trains || from_wanted) {
      wanted.insert(node.output);
    }
  }
  std::map<std::string, Tensor> diffs;
  for (const auto& [name, diff] : diff_outputs) {
    Tensor copy = diff_buffer(diff.dims());
    std::copy_n(diff.data(), diff.size(), copy.data());
    diffs.emplace(name, std::move(copy));
  }
  for (auto i = nodes_.size(); i-- > 0;) {
    const auto& node = nodes_[i];
    const auto diff_dst = diffs.find(node.output);
    if (diff_dst == diffs.end() || !wanted.contains(node.output)) {
      continue;
    }
    if (relu_in_batch_norm_[i]) {
      // The batch norm before it takes this gradient as its own output's (its only reader; wanted,
      // since a ReLU's output is wanted only through its input).
      diffs[node.inputs[0]] = std::move(diff_dst->second);
      diffs.erase(diff_dst);
      continue;
    }
    if (concat_in_place_[i]) {
      // Each input's gradient is its run of this one (held until the pass ends), or added to
      // what its other readers gave.
      Tensor& whole = diff_dst->second;
      std::int64_t offset = 0;
      for (const auto& input : node.inputs) {
        const Dims& dims = blob_dims_.at(input);
        if (wanted.contains(input)) {
          Tensor part = Tensor::view(whole.data() + offset, dims);
          const auto [sum, inserted] = diffs.try_emplace(input);
          if (inserted) {
            sum->second = std::move(part);
          } else {
            add_values(sum->second, part);
          }
        }
        offset += element_count(dims);
      }
      held_diffs_.push_back(std::move(whole));
      diffs.erase(diff_dst);
      continue;
    }
    std::vector<const Tensor*> src;
    std::vector<Tensor> diff_src_values(node.inputs.size());
    std::vector<Tensor*> diff_src;
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      src.push_back(blobs_.at(node.inputs[k]));
      const bool want = wanted.contains(node.inputs[k]);
      if (want) {
        diff_src_values[k] = diff_buffer(blob_dims_.at(node.inputs[k]));
      }
      diff_src.push_back(want ? &diff_src_values[k] : nullptr);
    }
    node.layer->backward(src, *blobs_.at(node.output), diff_dst->second, diff_src);
    if (!diff_dst->second.is_view()) {
      spare_diffs_.push_back(std::move(diff_dst->second));
    }
    diffs.erase(diff_dst);
    // In input order, so the sums do not depend on anything but the graph.
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      if (diff_src[k] == nullptr) {
        continue;
      }
      const auto [sum, inserted] = diffs.try_emplace(node.inputs[k]);
      if (inserted) {
        sum->second = std::move(diff_src_values[k]);
        continue;
      }
      add_values(sum->second, diff_src_values[k]);
      spare_diffs_.push_back(std::move(diff_src_values[k]));
    }
  }
  for (auto& held : held_diffs_) {
    spare_diffs_.push_back(std::move(held));
  }
  held_diffs_.clear();
  std::map<std::string, Tensor> result;
  for (const auto& input : diff_inputs) {
    const auto found = diffs.find(input);
    result[input] = found != diffs.end() ? std::move(found->second) : Tensor(blob_dims_.at(input));
  }
  return result;
}

Tensor Net::diff_buffer(const Dims& dims) {
  // The spare whose storage fits most closely, else the largest (it grows), else a new one.
  const std::size_t best = closest_fit(spare_diffs_.size(), element_count(dims),
                                       [&](std::size_t s) { return spare_diffs_[s].capacity(); });
  Tensor buffer;
  if (best < spare_diffs_.size()) {
    buffer = std::move(spare_diffs_[best]);
    spare_diffs_.erase(spare_diffs_.begin() + static_cast<std::ptrdiff_t>(best));
  }
  buffer.reshape_for_overwrite(dims);
  return buffer;
}

std::vector<Parameter> Net::parameters() {
  CAJAL_CHECK(weights_loaded_) << "Net::parameters before load_weights";
  std::vector<Parameter> result;
  for (auto& node : nodes_) {
    if (frozen(*node.layer)) {
      continue;
    }
    for (const auto& role : node.layer->trainable_roles()) {
      result.push_back({node.layer->name() + "." + role, &node.layer->mutable_weight(role),
                        &node.layer->grad(role)});
    }
  }
  return result;
}

void Net::freeze(const std::string& prefix) {
  const bool any = std::any_of(nodes_.begin(), nodes_.end(), [&](const Node& node) {
    return node.layer->name().starts_with(prefix);
  });
  if (!any) {
    throw Error("layers to freeze", "a prefix of some layer name", "'" + prefix + "'");
  }
  frozen_prefixes_.push_back(prefix);
}

bool Net::frozen(const Layer& layer) const {
  return std::any_of(frozen_prefixes_.begin(), frozen_prefixes_.end(),
                     [&](const std::string& prefix) { return layer.name().starts_with(prefix); });
}

void Net::zero_grad() {
  for (auto& node : nodes_) {
    node.layer->zero_grad();
  }
}

void Net::weights_changed() {
  CAJAL_CHECK(prepared_) << "Net::weights_changed before prepare";
  for (auto& node : nodes_) {
    node.layer->weights_changed();
  }
}

WeightMap Net::weights() const {
  CAJAL_CHECK(weights_loaded_) << "Net::weights before load_weights";
  if (rewritten_) {
    throw Error("Net::weights", "a Net that did not fold or fuse layers",
                "a folded or fused one (build it with NetOptions::for_training())");
  }
  WeightMap result;
  for (const auto& node : nodes_) {
    for (const auto& spec : node.layer->weight_specs()) {
      result[node.layer->name() + "." + spec.role] = node.layer->weight(spec.role);
    }
  }
  return result;
}

}  // namespace cajal::engine
