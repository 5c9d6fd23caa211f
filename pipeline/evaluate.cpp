#include "pipeline/evaluate.h"

#include <cstdio>
#include <optional>
#include <sstream>

#include "io/volume_io.h"

namespace cajal::pipeline {
namespace {

nlohmann::ordered_json optional_number(const std::optional<double>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json to_json(const Directed& directed) {
  return {{"pred_to_ref", directed.pred_to_ref}, {"ref_to_pred", directed.ref_to_pred}};
}

nlohmann::ordered_json to_json(const LabelMetrics& m) {
  const std::optional<SurfaceDistances>& d = m.distances;
  nlohmann::ordered_json out = {
      {"label", m.label.value},
      {"name", m.label.name},
      {"presence", to_string(m.presence)},
      {"pred_voxels", m.pred_voxels},
      {"ref_voxels", m.ref_voxels},
      {"overlap_voxels", m.overlap_voxels},
      {"dice", m.dice},
      {"hd95_mm", optional_number(d ? std::optional(d->hd95) : std::nullopt)},
      {"assd_mm", optional_number(d ? std::optional(d->assd) : std::nullopt)},
      {"hausdorff_mm", optional_number(d ? std::optional(d->hausdorff) : std::nullopt)},
      {"surface_dice", m.surface_dice},
      {"pred_volume_ml", m.pred_volume_ml},
      {"ref_volume_ml", m.ref_volume_ml},
      {"volume_difference_ml", m.volume_difference_ml},
      {"volume_difference_percent", optional_number(m.volume_difference_percent)},
      {"directed", nullptr},
  };
  if (d) {
    out["directed"] = {
        {"hausdorff_mm", to_json(d->max)},
        {"hd95_mm", to_json(d->p95)},
        {"mean_mm", to_json(d->mean)},
        {"surface_voxels", {{"pred", d->pred_surface_voxels}, {"ref", d->ref_surface_voxels}}}};
  }
  return out;
}

std::string format_number(double value, const char* format) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string format_optional(const std::optional<double>& value, const char* format) {
  return value ? format_number(*value, format) : std::string("-");
}

std::string csv_number(const std::optional<double>& value) {
  return value ? format_number(*value, "%.9g") : std::string();
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) {
    return text;
  }
  std::string quoted = "\"";
  for (char c : text) {
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return quoted + "\"";
}

std::string without_trailing_spaces(std::string line) {
  line.erase(line.find_last_not_of(" \n") + 1);
  return line + "\n";
}

std::string join(const std::vector<std::int64_t>& labels) {
  if (labels.empty()) {
    return "none";
  }
  std::string text;
  for (std::int64_t label : labels) {
    text += (text.empty() ? "" : ", ") + std::to_string(label);
  }
  return text;
}

}  // namespace

EvaluationReport evaluate_files(const std::filesystem::path& pred_path,
                                const std::filesystem::path& ref_path,
                                const EvaluationOptions& options) {
  const core::Volume pred = io::read_volume(pred_path);
  const core::Volume ref = io::read_volume(ref_path);
  return {pred_path.string(), ref_path.string(), evaluate_segmentation(pred, ref, options)};
}

nlohmann::ordered_json to_json(const EvaluationReport& report) {
  const Evaluation& e = report.evaluation;
  nlohmann::ordered_json labels = nlohmann::ordered_json::array();
  for (const LabelMetrics& m : e.labels) {
    labels.push_back(to_json(m));
  }
  return {{"pred", report.pred_path},
          {"ref", report.ref_path},
          {"size", e.geometry.size},
          {"spacing", e.geometry.spacing},
          {"tolerance_mm", e.tolerance_mm},
          {"labels_only_in_pred", e.only_in_pred},
          {"labels_only_in_ref", e.only_in_ref},
          {"labels", labels}};
}

std::string to_csv(const EvaluationReport& report) {
  std::ostringstream out;
  out << "label,name,presence,pred_voxels,ref_voxels,overlap_voxels,dice,hd95_mm,assd_mm,"
         "hausdorff_mm,surface_dice,tolerance_mm,pred_volume_ml,ref_volume_ml,"
         "volume_difference_ml,volume_difference_percent,hd95_pred_to_ref_mm,"
         "hd95_ref_to_pred_mm,mean_pred_to_ref_mm,mean_ref_to_pred_mm\n";
  for (const LabelMetrics& m : report.evaluation.labels) {
    const std::optional<SurfaceDistances>& d = m.distances;
    auto distance = [&](double SurfaceDistances::*field) {
      return csv_number(d ? std::optional((*d).*field) : std::nullopt);
    };
    auto directed = [&](Directed SurfaceDistances::*field, double Directed::*direction) {
      return csv_number(d ? std::optional((*d).*field.*direction) : std::nullopt);
    };
    out << m.label.value << "," << csv_field(m.label.name) << "," << to_string(m.presence) << ","
        << m.pred_voxels << "," << m.ref_voxels << "," << m.overlap_voxels << ","
        << csv_number(m.dice) << "," << distance(&SurfaceDistances::hd95) << ","
        << distance(&SurfaceDistances::assd) << "," << distance(&SurfaceDistances::hausdorff) << ","
        << csv_number(m.surface_dice) << "," << csv_number(report.evaluation.tolerance_mm) << ","
        << csv_number(m.pred_volume_ml) << "," << csv_number(m.ref_volume_ml) << ","
        << csv_number(m.volume_difference_ml) << "," << csv_number(m.volume_difference_percent)
        << "," << directed(&SurfaceDistances::p95, &Directed::pred_to_ref) << ","
        << directed(&SurfaceDistances::p95, &Directed::ref_to_pred) << ","
        << directed(&SurfaceDistances::mean, &Directed::pred_to_ref) << ","
        << directed(&SurfaceDistances::mean, &Directed::ref_to_pred) << "\n";
  }
  return out.str();
}

std::string to_text(const EvaluationReport& report) {
  const Evaluation& e = report.evaluation;
  std::ostringstream out;
  const core::Index3& size = e.geometry.size;
  out << "prediction  " << report.pred_path << "\n"
      << "reference   " << report.ref_path << "\n"
      << "grid        " << size[0] << " x " << size[1] << " x " << size[2] << ", spacing "
      << core::to_string(e.geometry.spacing) << " mm\n\n";
  const std::string nsd = "NSD@" + format_number(e.tolerance_mm, "%g") + "mm";
  char line[256];
  std::snprintf(line, sizeof line, "%7s  %-16s %8s %8s %8s %8s %10s %10s %10s %10s %8s  %s\n",
                "label", "name", "Dice", "HD95", "ASSD", "HD", nsd.c_str(), "pred mL", "ref mL",
                "diff mL", "diff %", "note");
  out << without_trailing_spaces(line);
  for (const LabelMetrics& m : e.labels) {
    const std::optional<SurfaceDistances>& d = m.distances;
    const std::string note = m.presence == LabelPresence::both ? "" : to_string(m.presence);
    std::snprintf(line, sizeof line, "%7lld  %-16s %8s %8s %8s %8s %10s %10s %10s %10s %8s  %s\n",
                  static_cast<long long>(m.label.value), m.label.name.substr(0, 16).c_str(),
                  format_number(m.dice, "%.4f").c_str(),
                  format_optional(d ? std::optional(d->hd95) : std::nullopt, "%.2f").c_str(),
                  format_optional(d ? std::optional(d->assd) : std::nullopt, "%.2f").c_str(),
                  format_optional(d ? std::optional(d->hausdorff) : std::nullopt, "%.2f").c_str(),
                  format_number(m.surface_dice, "%.4f").c_str(),
                  format_number(m.pred_volume_ml, "%.3f").c_str(),
                  format_number(m.ref_volume_ml, "%.3f").c_str(),
                  format_number(m.volume_difference_ml, "%+.3f").c_str(),
                  format_optional(m.volume_difference_percent, "%+.1f").c_str(), note.c_str());
    out << without_trailing_spaces(line);
  }
  out << "\nDistances in mm between surface voxels (HD95: larger directed 95th percentile; ASSD: "
         "mean over both surfaces).\n"
      << "Labels only in the prediction: " << join(e.only_in_pred) << "\n"
      << "Labels only in the reference:  " << join(e.only_in_ref) << "\n";
  return out.str();
}

}  // namespace cajal::pipeline
