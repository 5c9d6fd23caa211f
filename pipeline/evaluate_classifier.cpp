#include "pipeline/evaluate_classifier.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <system_error>

#include "core/error.h"
#include "io/plot.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr double kSumTolerance = 1e-3;

// A table's header: column name -> index, every required name present and no name twice.
std::map<std::string, std::size_t> read_header(const CsvTable& table, const std::string& source,
                                               const std::vector<std::string>& required) {
  if (table.rows.empty()) {
    throw Error("'" + source + "'", "a header line and rows", "an empty file");
  }
  std::map<std::string, std::size_t> columns;
  const std::vector<std::string>& header = table.rows[0];
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (!columns.emplace(header[c], c).second) {
      throw Error(csv_location(source, table.lines[0]) + ": column " + quoted_cell(header[c]),
                  "each column once", "it twice");
    }
  }
  for (const std::string& name : required) {
    if (columns.count(name) == 0) {
      throw Error(csv_location(source, table.lines[0]) + ": header", "a column '" + name + "'",
                  "none");
    }
  }
  return columns;
}

void check_width(const CsvTable& table, std::size_t row, const std::string& source) {
  if (table.rows[row].size() != table.rows[0].size()) {
    throw Error(csv_location(source, table.lines[row]),
                std::to_string(table.rows[0].size()) + " cells as in the header",
                std::to_string(table.rows[row].size()));
  }
}

double parse_probability(const std::string& text, const std::string& context) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end || !std::isfinite(value)) {
    throw Error(context, "a number in [0, 1]", quoted_cell(text));
  }
  if (value < 0 || value > 1) {
    throw Error(context, "a number in [0, 1]", text);
  }
  return value;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("'" + path.string() + "'", "a readable file", "a file that cannot be opened");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::ordered_json value_or_null(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) {
    return nullptr;
  }
  return *value;
}

nlohmann::ordered_json numbers(const std::vector<double>& values) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const double v : values) {
    array.push_back(value_or_null(v));
  }
  return array;
}

std::string format_fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

}  // namespace

ClassifierData read_classifier_data(const std::string& predictions_csv,
                                    const std::string& predictions_source,
                                    const std::string& truth_csv, const std::string& truth_source) {
  const CsvTable predictions = parse_csv(predictions_csv, predictions_source);
  const CsvTable truth = parse_csv(truth_csv, truth_source);
  const auto pred_columns = read_header(predictions, predictions_source, {"id", "predicted"});
  const auto truth_columns = read_header(truth, truth_source, {"id", "label"});

  ClassifierData data;
  std::vector<std::size_t> probability_columns;
  std::map<std::string, int> class_index;
  for (std::size_t c = 0; c < predictions.rows[0].size(); ++c) {
    const std::string& name = predictions.rows[0][c];
    if (name.rfind("p_", 0) == 0) {
      const std::string class_name = name.substr(2);
      if (class_name.empty()) {
        throw Error(csv_location(predictions_source, predictions.lines[0]) + ": column 'p_'",
                    "p_<class name>", "no class name");
      }
      class_index.emplace(class_name, static_cast<int>(data.classes.size()));
      data.classes.push_back(class_name);
      probability_columns.push_back(c);
    }
  }
  if (data.classes.size() < 2) {
    throw Error(csv_location(predictions_source, predictions.lines[0]) + ": header",
                "a p_<class> column for each of at least two classes",
                std::to_string(data.classes.size()));
  }

  std::map<std::string, std::pair<int, int>> truth_by_id;  // id -> (class, line)
  for (std::size_t r = 1; r < truth.rows.size(); ++r) {
    check_width(truth, r, truth_source);
    const std::string context = csv_location(truth_source, truth.lines[r]);
    const std::string& id = truth.rows[r][truth_columns.at("id")];
    const std::string& label = truth.rows[r][truth_columns.at("label")];
    if (id.empty()) {
      throw Error(context + ": id", "a non-empty id", "an empty cell");
    }
    const auto known = class_index.find(label);
    if (known == class_index.end()) {
      throw Error(context + ": label", "one of the classes of the p_<class> columns",
                  quoted_cell(label));
    }
    if (!truth_by_id.emplace(id, std::make_pair(known->second, truth.lines[r])).second) {
      throw Error(context + ": id " + quoted_cell(id), "each id once", "it again");
    }
  }

  std::map<std::string, int> seen;  // prediction ids
  for (std::size_t r = 1; r < predictions.rows.size(); ++r) {
    check_width(predictions, r, predictions_source);
    const std::vector<std::string>& row = predictions.rows[r];
    const std::string context = csv_location(predictions_source, predictions.lines[r]);
    const std::string& id = row[pred_columns.at("id")];
    if (id.empty()) {
      throw Error(context + ": id", "a non-empty id", "an empty cell");
    }
    if (!seen.emplace(id, predictions.lines[r]).second) {
      throw Error(context + ": id " + quoted_cell(id), "each id once", "it again");
    }
    const auto found = truth_by_id.find(id);
    if (found == truth_by_id.end()) {
      throw Error(context + ": id " + quoted_cell(id), "an id listed in '" + truth_source + "'",
                  "an id it does not list");
    }
    const std::string& predicted = row[pred_columns.at("predicted")];
    const auto predicted_class = class_index.find(predicted);
    if (predicted_class == class_index.end()) {
      throw Error(context + ": predicted", "one of the classes of the p_<class> columns",
                  quoted_cell(predicted));
    }
    std::vector<double> p;
    double sum = 0;
    for (std::size_t k = 0; k < probability_columns.size(); ++k) {
      p.push_back(parse_probability(row[probability_columns[k]],
                                    context + ": column 'p_" + data.classes[k] + "'"));
      sum += p.back();
    }
    if (std::abs(sum - 1) > kSumTolerance) {
      throw Error(context + ": probabilities", "a sum of 1 within 1e-3", format_fixed(sum, 6));
    }
    data.truth.push_back(found->second.first);
    data.predicted.push_back(predicted_class->second);
    data.probabilities.push_back(std::move(p));
  }
  for (const auto& [id, entry] : truth_by_id) {
    if (seen.count(id) == 0) {
      throw Error(csv_location(truth_source, entry.second) + ": id " + quoted_cell(id),
                  "a prediction for it in '" + predictions_source + "'", "none");
    }
  }
  if (data.truth.empty()) {
    throw Error("'" + predictions_source + "'", "at least one prediction row", "none");
  }
  return data;
}

ClassifierData read_classifier_files(const fs::path& predictions, const fs::path& truth) {
  return read_classifier_data(read_text(predictions), predictions.string(), read_text(truth),
                              truth.string());
}

nlohmann::ordered_json to_json(const ClassifierMetrics& metrics) {
  nlohmann::ordered_json json;
  nlohmann::ordered_json names = nlohmann::ordered_json::array();
  for (const ClassMetrics& m : metrics.classes) {
    names.push_back(m.name);
  }
  json["classes"] = names;
  json["count"] = metrics.count;
  json["accuracy"] = metrics.accuracy;
  json["balanced_accuracy"] = metrics.balanced_accuracy;
  json["macro_auc"] = value_or_null(metrics.macro_auc);
  json["expected_calibration_error"] = metrics.expected_calibration_error;
  json["confusion_matrix"] = metrics.confusion;
  nlohmann::ordered_json per_class = nlohmann::ordered_json::array();
  for (const ClassMetrics& m : metrics.classes) {
    nlohmann::ordered_json entry;
    entry["class"] = m.name;
    entry["support"] = m.support;
    entry["predicted"] = m.predicted_count;
    entry["sensitivity"] = value_or_null(m.sensitivity);
    entry["specificity"] = value_or_null(m.specificity);
    entry["auc"] = value_or_null(m.auc);
    entry["roc"] = {{"fpr", numbers(m.roc.fpr)},
                    {"tpr", numbers(m.roc.tpr)},
                    {"thresholds", numbers(m.roc.thresholds)}};
    per_class.push_back(entry);
  }
  json["per_class"] = per_class;
  nlohmann::ordered_json bins = nlohmann::ordered_json::array();
  for (const ReliabilityBin& bin : metrics.reliability) {
    bins.push_back({{"lower", bin.lower},
                    {"upper", bin.upper},
                    {"count", bin.count},
                    {"mean_confidence", value_or_null(bin.mean_confidence)},
                    {"accuracy", value_or_null(bin.accuracy)}});
  }
  json["reliability"] = bins;
  return json;
}

void write_classifier_plots(const ClassifierMetrics& metrics, const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error || !fs::is_directory(dir)) {
    throw Error("plot folder '" + dir.string() + "'", "a folder that can be made",
                error ? error.message() : "a file");
  }
  io::PlotPanel roc{"ROC, one class vs rest", "false positive rate (y: true positive rate)", {}};
  roc.series.push_back({"chance", {0, 1}, {0, 1}});
  for (const ClassMetrics& m : metrics.classes) {
    const std::string auc = m.auc ? format_fixed(*m.auc, 3) : "n/a";
    roc.series.push_back({m.name + " (AUC " + auc + ")", m.roc.fpr, m.roc.tpr});
  }
  io::write_line_plot({roc}, dir / "roc.png");

  io::PlotPanel reliability{
      "reliability, ECE " + format_fixed(metrics.expected_calibration_error, 3),
      "top-class confidence (y: accuracy)",
      {}};
  reliability.series.push_back({"perfect calibration", {0, 1}, {0, 1}});
  io::PlotPanel counts{"cases per bin", "top-class confidence", {}};
  io::PlotSeries observed{"accuracy", {}, {}};
  io::PlotSeries count{"cases", {}, {}};
  for (const ReliabilityBin& bin : metrics.reliability) {
    count.x.push_back((bin.lower + bin.upper) / 2);
    count.y.push_back(static_cast<double>(bin.count));
    if (bin.mean_confidence) {
      observed.x.push_back(*bin.mean_confidence);
      observed.y.push_back(*bin.accuracy);
    }
  }
  reliability.series.push_back(observed);
  counts.series.push_back(count);
  io::write_line_plot({reliability, counts}, dir / "reliability.png");
}

}  // namespace cajal::pipeline
