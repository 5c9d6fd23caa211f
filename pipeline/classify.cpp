#include "pipeline/classify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "io/png_image.h"
#include "io/volume_io.h"
#include "pipeline/bundled_model.h"
#include "pipeline/case_input.h"
#include "pipeline/classifier_metrics.h"
#include "pipeline/csv.h"
#include "pipeline/sha256.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The report's "input" block, as `cajal segment` writes it.
json describe_input(const fs::path& path, const ReadInput& read) {
  SegmentReport described;
  described.input_path = path.string();
  described.input_kind = io::to_string(io::classify_input(path));
  described.geometry = read.volume.geometry;
  described.pixel_type = read.volume.pixel_type;
  described.intensity_range = read.range;
  described.pixel_sha256 = pixel_data_sha256(read.volume);
  if (read.series) {
    described.dicom = static_cast<const io::DicomSeriesAttributes&>(*read.series);
  }
  return to_json(described)["input"];
}

std::vector<Region> case_regions(const ReadInput& read, const BatchCase& c,
                                 const ClassifyOptions& options, const models::RunConfig& run) {
  if (!c.roi.empty()) {
    const core::Volume mask = io::read_volume(c.roi);
    std::vector<Region> regions = mask_regions(read.volume, mask, c.id, options.mask, run);
    if (regions.empty()) {
      core::log_warning("mask '" + c.roi.string() + "' of case '" + c.id + "' holds no region");
    }
    return regions;
  }
  if (options.centre) {
    return {centre_region(*options.centre, options.size_mm, c.id, run)};
  }
  return {whole_image_region(read.volume, c.id)};
}

json vec_json(const core::Vec3& v) {
  return json::array({v[0], v[1], v[2]});
}

int argmax(const std::vector<double>& p) {
  return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
}

// The middle axial slice of a crop, windowed to its 1st-99th percentile, upscaled (nearest) to
// at least 128 pixels a side; x to the right, y (posterior) down.
io::RgbImage crop_picture(const engine::Tensor& crop) {
  const engine::Dims& d = crop.dims();
  const std::int64_t w = d.back();
  const std::int64_t h = d[d.size() - 2];
  const std::int64_t depth = d.size() == 4 ? d[1] : 1;
  const float* slice = crop.data() + (depth / 2) * h * w;
  std::vector<float> sorted(slice, slice + h * w);
  std::sort(sorted.begin(), sorted.end());
  const double low = sorted[sorted.size() / 100];
  const double high = std::max(sorted[sorted.size() * 99 / 100], static_cast<float>(low + 1e-6));
  const auto scale = static_cast<int>((128 + std::min(w, h) - 1) / std::min(w, h));
  io::RgbImage image = io::make_rgb_image(static_cast<int>(w) * scale, static_cast<int>(h) * scale);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double v = slice[(y / scale) * w + x / scale];
      const auto grey = static_cast<std::uint8_t>(
          std::lround(255 * std::clamp((v - low) / (high - low), 0.0, 1.0)));
      std::fill_n(image.at(x, y), 3, grey);
    }
  }
  return image;
}

std::string region_stem(const std::string& id) {
  const auto slash = id.rfind('/');
  return slash == std::string::npos ? id : id.substr(slash + 1);
}

void write_case(const ClassifiedCase& c, const ClassifyModel& model, bool png,
                const fs::path& folder) {
  if (png) {
    fs::create_directories(folder / "regions");
    for (std::size_t r = 0; r < c.regions.size(); ++r) {
      io::RgbImage picture = crop_picture(c.crops[r]);
      const std::vector<double> p = softmax(c.logits[r], model.temperature);
      const auto top = static_cast<std::size_t>(argmax(p));
      char text[160];
      std::snprintf(text, sizeof text, "%s %.2f", model.model.spec().run.labels[top].c_str(),
                    p[top]);
      io::draw_text(picture, text, 4, 16, 12, {255, 255, 0});
      io::write_png(picture, folder / "regions" / (region_stem(c.regions[r].id) + ".png"));
    }
  }
  write_text_atomically(folder / "report.json",
                        classify_report(c, model, model.temperature).dump(2) + "\n");
}

// TRUTH.csv: `id,label` rows after an optional header row starting with `id` (evaluate-classifier's
// CSV rules); labels must be class names of the model.
std::map<std::string, int> read_truth(const fs::path& path, const models::RunConfig& run) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error("truth file '" + path.string() + "'", "a readable CSV of id,label", "no such file");
  }
  std::stringstream text;
  text << file.rdbuf();
  const CsvTable table = parse_csv(text.str(), path.string());
  std::map<std::string, int> truth;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& row = table.rows[r];
    if (r == 0 && !row.empty() && row[0] == "id") {
      continue;
    }
    const auto found = row.size() == 2 ? std::find(run.labels.begin(), run.labels.end(), row[1])
                                       : run.labels.end();
    if (found == run.labels.end()) {
      std::string cells;
      for (const std::string& cell : row) {
        cells += (cells.empty() ? "" : ",") + cell;
      }
      throw Error(csv_location(path.string(), table.lines[r]), "id,label with a class of the model",
                  "'" + cells + "'");
    }
    truth[row[0]] = static_cast<int>(found - run.labels.begin());
  }
  return truth;
}

CalibrationFit calibrate(const std::vector<const ClassifiedCase*>& cases,
                         const fs::path& truth_path, const models::RunConfig& run,
                         std::int64_t& unmatched) {
  std::map<std::string, int> truth = read_truth(truth_path, run);
  std::vector<std::vector<float>> logits;
  std::vector<int> labels;
  for (const ClassifiedCase* c : cases) {
    for (std::size_t r = 0; r < c->regions.size(); ++r) {
      const auto found = truth.find(c->regions[r].id);
      if (found == truth.end()) {
        ++unmatched;
        continue;
      }
      logits.push_back(c->logits[r]);
      labels.push_back(found->second);
      truth.erase(found);
    }
  }
  if (!truth.empty()) {
    throw Error("--calibrate '" + truth_path.string() + "'", "every id a region of this run",
                "'" + truth.begin()->first + "' (and " + std::to_string(truth.size() - 1) +
                    " more) not found");
  }
  if (logits.empty()) {
    throw Error("--calibrate '" + truth_path.string() + "'", "at least one labelled region",
                "none");
  }
  return fit_temperature(logits, labels);
}

void write_calibration(const ClassifyModel& model, const CalibrationFit& fit,
                       const fs::path& truth) {
  const json doc{{"temperature", fit.temperature},         {"regions", fit.regions},
                 {"nll_before", fit.nll_before},           {"nll_after", fit.nll_after},
                 {"ece_before", fit.ece_before},           {"ece_after", fit.ece_after},
                 {"fitted_on", truth.filename().string()}, {"cajal_version", version()}};
  write_text_atomically(model.dir / "calibration.json", doc.dump(2) + "\n");
}

}  // namespace

double read_temperature(const fs::path& model_dir) {
  const fs::path path = model_dir / "calibration.json";
  if (!fs::exists(path)) {
    return 1.0;
  }
  const json doc = models::read_json_file(path);
  if (!doc.is_object() || !doc.contains("temperature") || !doc["temperature"].is_number() ||
      !(doc["temperature"].get<double>() > 0)) {
    throw Error("'" + path.string() + "'", "an object with \"temperature\": a number > 0",
                doc.dump().substr(0, 80));
  }
  return doc["temperature"].get<double>();
}

ClassifyModel load_classify_model(const fs::path& requested_dir, int threads) {
  const fs::path dir = requested_dir.empty()
                           ? find_bundled_model(kBundledClassifyModel, "lesion classifier")
                           : requested_dir;
  models::Model model = models::Model::load(dir);
  const models::RunConfig& run = model.spec().run;
  if (run.task != "classification" || run.labels.size() < 2 || run.input_channels != 1) {
    throw Error("model '" + dir.string() + "'",
                "a classification model of one input channel and at least two labels",
                "task " + run.task + ", " + std::to_string(run.labels.size()) + " labels");
  }
  model_field_mm(run);
  engine::Dims input{kClassifyBatch, 1};
  input.insert(input.end(), run.patch_size.begin(), run.patch_size.end());
  engine::Context context(threads);
  model.net().prepare(context, {{model.spec().inputs.at(0), input}});
  ModelProvenance provenance{dir.string(), model.card().name, model.card().version,
                             sha256_file(dir / "weights.safetensors")};
  const double temperature = read_temperature(dir);
  return {std::move(model), std::move(context), std::move(provenance), dir, temperature};
}

std::vector<std::vector<float>> run_classifier(ClassifyModel& model,
                                               const std::vector<engine::Tensor>& crops) {
  const models::ModelSpec& spec = model.model.spec();
  const auto classes = static_cast<std::int64_t>(spec.run.labels.size());
  std::vector<std::vector<float>> logits;
  for (std::size_t first = 0; first < crops.size(); first += kClassifyBatch) {
    engine::Dims dims{kClassifyBatch};
    dims.insert(dims.end(), crops[first].dims().begin(), crops[first].dims().end());
    engine::Tensor batch(dims);
    const std::int64_t per = engine::element_count(crops[first].dims());
    const std::size_t count = std::min<std::size_t>(kClassifyBatch, crops.size() - first);
    for (std::size_t b = 0; b < count; ++b) {
      std::copy_n(crops[first + b].data(), per, batch.data() + static_cast<std::int64_t>(b) * per);
    }
    const auto outputs = model.model.net().forward({{spec.inputs.at(0), batch}});
    const engine::Tensor& out = outputs.at(spec.outputs.at(0));
    CAJAL_CHECK(engine::element_count(out.dims()) == kClassifyBatch * classes)
        << "classifier output " << engine::to_string(out.dims()) << " for " << classes
        << " classes";
    for (std::size_t b = 0; b < count; ++b) {
      const float* row = out.data() + static_cast<std::int64_t>(b) * classes;
      logits.emplace_back(row, row + classes);
    }
  }
  return logits;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t c = 0; c < logits.size(); ++c) {
    p[c] = std::exp((logits[c] - top) / temperature);
    sum += p[c];
  }
  for (double& v : p) {
    v /= sum;
  }
  return p;
}

ClassifiedCase classify_case(ClassifyModel& model, const BatchCase& c,
                             const ClassifyOptions& options) {
  const models::RunConfig& run = model.model.spec().run;
  ClassifiedCase result;
  result.id = c.id;
  StageClock clock(result.timings_seconds);
  const ReadInput read = read_input(c.input, "");
  result.input = describe_input(c.input, read);
  clock.finish("read");
  result.regions = case_regions(read, c, options, run);
  for (const Region& region : result.regions) {
    result.crops.push_back(crop_region(read.volume, region, run));
  }
  clock.finish("regions");
  if (!result.crops.empty()) {
    result.logits = run_classifier(model, result.crops);
  }
  clock.finish("inference");
  return result;
}

json classify_report(const ClassifiedCase& c, const ClassifyModel& model, double temperature) {
  const models::RunConfig& run = model.model.spec().run;
  json regions = json::array();
  for (std::size_t r = 0; r < c.regions.size(); ++r) {
    const Region& region = c.regions[r];
    const std::vector<double> p = softmax(c.logits[r], temperature);
    json probabilities = json::object();
    for (std::size_t k = 0; k < p.size(); ++k) {
      probabilities[run.labels[k]] = p[k];
    }
    const int top = argmax(p);
    json entry{{"id", region.id},
               {"source", to_string(region.source)},
               {"centre_mm", vec_json(region.centre_mm)},
               {"field_mm", vec_json(region.field_mm)},
               {"logits", c.logits[r]},
               {"probabilities", probabilities},
               {"predicted", run.labels[static_cast<std::size_t>(top)]},
               {"probability", p[static_cast<std::size_t>(top)]}};
    if (region.source == RegionSource::roi) {
      entry["voxels"] = region.voxels;
      entry["volume_ml"] = region.volume_ml;
    }
    regions.push_back(entry);
  }
  json timings = json::object();
  double total = 0;
  for (const auto& [stage, seconds] : c.timings_seconds) {
    timings[stage] = seconds;
    total += seconds;
  }
  timings["total"] = total;
  const ModelProvenance& m = model.provenance;
  return {{"schema", kClassifyReportSchema},
          {"id", c.id},
          {"input", c.input},
          {"model",
           {{"path", m.path},
            {"name", m.name},
            {"version", m.version},
            {"weights_sha256", m.weights_sha256},
            {"labels", run.labels}}},
          {"temperature", temperature},
          {"cajal_version", version()},
          {"threads", model.context.threads()},
          {"timings_seconds", timings},
          {"regions", regions}};
}

std::string predictions_csv(const std::vector<const ClassifiedCase*>& cases,
                            const models::RunConfig& run, double temperature) {
  std::ostringstream out;
  out.precision(9);
  out << "id,case,predicted,probability";
  for (const char* prefix : {"p_", "logit_"}) {
    for (const std::string& label : run.labels) {
      out << "," << prefix << label;
    }
  }
  out << ",centre_x_mm,centre_y_mm,centre_z_mm,volume_ml\n";
  for (const ClassifiedCase* c : cases) {
    for (std::size_t r = 0; r < c->regions.size(); ++r) {
      const Region& region = c->regions[r];
      const std::vector<double> p = softmax(c->logits[r], temperature);
      const auto top = static_cast<std::size_t>(argmax(p));
      out << region.id << "," << c->id << "," << run.labels[top] << "," << p[top];
      for (const double v : p) {
        out << "," << v;
      }
      for (const float v : c->logits[r]) {
        out << "," << v;
      }
      out << "," << region.centre_mm[0] << "," << region.centre_mm[1] << "," << region.centre_mm[2]
          << ",";
      if (region.source == RegionSource::roi) {
        out << region.volume_ml;
      }
      out << "\n";
    }
  }
  return out.str();
}

double mean_nll(const std::vector<std::vector<float>>& logits, const std::vector<int>& labels,
                double temperature) {
  double sum = 0;
  for (std::size_t s = 0; s < logits.size(); ++s) {
    const std::vector<double> p = softmax(logits[s], temperature);
    sum -= std::log(std::max(p[static_cast<std::size_t>(labels[s])], 1e-300));
  }
  return sum / static_cast<double>(logits.size());
}

double expected_calibration_error(const std::vector<std::vector<float>>& logits,
                                  const std::vector<int>& labels, double temperature, int bins) {
  std::vector<std::vector<double>> probabilities;
  for (const auto& row : logits) {
    probabilities.push_back(softmax(row, temperature));
  }
  return expected_calibration_error(probabilities, labels, bins);
}

CalibrationFit fit_temperature(const std::vector<std::vector<float>>& logits,
                               const std::vector<int>& labels) {
  CAJAL_CHECK(!logits.empty() && logits.size() == labels.size()) << "calibration samples";
  const auto nll = [&](double u) { return mean_nll(logits, labels, std::exp(u)); };
  const double ratio = (std::sqrt(5.0) - 1) / 2;
  double a = std::log(0.05);
  double b = std::log(20.0);
  double c = b - ratio * (b - a);
  double d = a + ratio * (b - a);
  double fc = nll(c);
  double fd = nll(d);
  for (int iteration = 0; iteration < 80; ++iteration) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - ratio * (b - a);
      fc = nll(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + ratio * (b - a);
      fd = nll(d);
    }
  }
  CalibrationFit fit;
  fit.temperature = std::exp(0.5 * (a + b));
  fit.regions = static_cast<std::int64_t>(logits.size());
  fit.nll_before = mean_nll(logits, labels, 1.0);
  fit.nll_after = mean_nll(logits, labels, fit.temperature);
  fit.ece_before = expected_calibration_error(logits, labels, 1.0);
  fit.ece_after = expected_calibration_error(logits, labels, fit.temperature);
  return fit;
}

ClassifyOutcome run_classify(const ClassifyRequest& request) {
  if (request.inputs.empty() == request.manifest.empty()) {
    throw Error("cajal classify", "input paths or --manifest FILE (not both)",
                request.inputs.empty() ? "neither" : "both");
  }
  const ClassifyOptions& options = request.options;
  ClassifyOutcome outcome;
  outcome.batch = !request.manifest.empty() || request.inputs.size() > 1;
  if (outcome.batch && !options.roi.empty()) {
    throw Error("--roi", "one input (a batch gives each case's mask in the manifest's roi column)",
                "a batch");
  }
  std::vector<BatchCase> cases = request.manifest.empty() ? cases_from_inputs(request.inputs)
                                                          : read_manifest(request.manifest, true);
  if (request.manifest.empty()) {
    for (BatchCase& c : cases) {
      c.roi = options.roi;
    }
  }
  ClassifyModel model = load_classify_model(options.model_dir, options.threads);
  const models::RunConfig& run = model.model.spec().run;
  std::vector<std::optional<ClassifiedCase>> done(cases.size());
  std::vector<std::exception_ptr> errors(cases.size());
  std::vector<const ClassifiedCase*> succeeded;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    try {
      done[i] = classify_case(model, cases[i], options);
      succeeded.push_back(&*done[i]);
    } catch (...) {
      if (!outcome.batch) {
        throw;
      }
      errors[i] = std::current_exception();
    }
  }
  if (!request.calibrate.empty()) {
    outcome.calibration = calibrate(succeeded, request.calibrate, run, outcome.unmatched_regions);
    write_calibration(model, *outcome.calibration, request.calibrate);
    model.temperature = outcome.calibration->temperature;
  }
  outcome.temperature = model.temperature;
  for (const ClassifiedCase* c : succeeded) {
    outcome.reports.push_back(classify_report(*c, model, model.temperature));
  }
  const std::string csv = predictions_csv(succeeded, run, model.temperature);
  if (!outcome.batch) {
    write_folder_atomically(request.outdir, [&](const fs::path& folder) {
      write_case(*done[0], model, options.png, folder);
      write_text_atomically(folder / "predictions.csv", csv);
    });
    return outcome;
  }
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    index[cases[i].id] = i;
  }
  outcome.summary =
      run_batch(cases, request.outdir, [&](const BatchCase& c, const fs::path& folder) {
        const std::size_t i = index.at(c.id);
        if (errors[i]) {
          std::rethrow_exception(errors[i]);
        }
        write_case(*done[i], model, options.png, folder);
      });
  write_text_atomically(request.outdir / "predictions.csv", csv);
  return outcome;
}

}  // namespace cajal::pipeline
