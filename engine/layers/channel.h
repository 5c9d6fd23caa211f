// Operations across channels: softmax over channels, argmax over channels ([N, 1, ...] holding
// the index of the largest channel as a float, the first one on ties, as torch.argmax(x, 1,
// keepdim=True)), concat over channels, and element-wise add of inputs of equal dims.
// Backward: softmax by oneDNN's softmax_backward (from dst), concat splits diff_dst by channels,
// add copies it to every input; argmax has none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

// None of these take keys.
class ChannelLayer : public Layer {
 public:
  using Layer::Layer;
  // Training, after prepare(): a concat writes its output in the layout
  // [N, C / block, spatial..., block] (block 8 or 16; each input's channels whole blocks) in
  // which the convolution that alone reads it reads its source, and takes its gradient so (one
  // reorder per input each way instead of a copy and the convolution's reorder): Net's
  // link_training_layouts. Until the next prepare(). Returns whether it does.
  virtual bool write_blocked_in_training(std::int64_t /*block*/) { return false; }
  // After write_blocked_in_training(block): input `input` is in that same blocked layout in its
  // blob (its writer writes it so, Net's link_training_layouts), and its gradient is given so;
  // its reorders each way become copies of whole blocks. Returns whether it does.
  virtual bool read_blocked_input(std::size_t /*input*/, std::int64_t /*block*/) { return false; }
  // The block of write_blocked_in_training, 0 before it.
  virtual std::int64_t training_block() const { return 0; }
  // Whether every input is in that layout (read_blocked_input): the concat only copies.
  virtual bool all_inputs_blocked() const { return false; }

 protected:
  void parse_params(ParamReader& /*params*/) override {}
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
};

std::unique_ptr<Layer> make_channel(LayerType type, std::string name);

}  // namespace cajal::engine
