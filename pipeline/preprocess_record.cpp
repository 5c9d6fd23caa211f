// to_json for the preprocessing record (declared in pipeline/preprocess.h), for report.json.
#include "pipeline/preprocess.h"

namespace cajal::pipeline {
namespace {

nlohmann::json grid_json(const core::Geometry& g) {
  return {{"size", g.size},
          {"spacing", g.spacing},
          {"origin", g.origin},
          {"direction", g.direction},
          {"orientation", core::orientation_code(g.direction)}};
}

struct StepJson {
  nlohmann::json operator()(const ReorientStep& s) const {
    return {{"step", "reorient"},
            {"before", grid_json(s.before)},
            {"after", grid_json(s.after)},
            {"source_axis", s.source_axis},
            {"flip", s.flip}};
  }
  nlohmann::json operator()(const CropStep& s) const {
    return {{"step", "crop"},   {"kind", s.kind}, {"before", grid_json(s.before)},
            {"begin", s.begin}, {"end", s.end},   {"after", grid_json(s.after)}};
  }
  nlohmann::json operator()(const NormalizeStep& s) const {
    nlohmann::json j = {{"step", "normalize"}, {"kind", s.kind}, {"mean", s.mean}, {"std", s.std}};
    if (s.clipped) {
      j["clip_min"] = s.clip_min;
      j["clip_max"] = s.clip_max;
    }
    return j;
  }
  nlohmann::json operator()(const ResampleStep& s) const {
    return {{"step", "resample"},
            {"interpolation", "linear (image), nearest (labels)"},
            {"before", grid_json(s.before)},
            {"after", grid_json(s.after)}};
  }
  nlohmann::json operator()(const PadStep& s) const {
    return {{"step", "pad"},    {"before", grid_json(s.before)},
            {"lower", s.lower}, {"upper", s.upper},
            {"value", s.value}, {"after", grid_json(s.after)}};
  }
};

}  // namespace

nlohmann::json to_json(const PreprocessRecord& record) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& step : record.steps) {
    steps.push_back(std::visit(StepJson{}, step));
  }
  return {
      {"input", grid_json(record.input)}, {"output", grid_json(record.output)}, {"steps", steps}};
}

}  // namespace cajal::pipeline
