// Batches of `cajal segment`: the cases (command-line inputs or a manifest CSV), each written
// into a temporary folder and renamed into place when complete, failures recorded without
// stopping the others, and summary.json / summary.csv. See docs/segment.md.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cajal::pipeline {

struct BatchCase {
  std::string id;  // the case's folder name under OUTDIR
  std::filesystem::path input;
  std::filesystem::path roi = {};  // `cajal classify`'s mask for the case; may be empty
};

// Reads a manifest: a CSV file with the header `id,path` and one case a row (RFC 4180 quoting;
// blank lines ignored; a relative path is relative to the manifest's folder). Throws Error
// naming the file and line of the first bad row: wrong field count, empty id or path, an id that
// is not a plain folder name, or a repeated id.
// With `roi_column`, the header may also be `id,path,roi` (`cajal classify`: a mask per case,
// the cell may be empty; relative to the manifest's folder too).
std::vector<BatchCase> read_manifest(const std::filesystem::path& manifest,
                                     bool roi_column = false);

// Cases for input paths given on the command line: the id is the file name without its volume
// extension (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd, .dcm) or the folder's name; repeated ids
// get _2, _3, ...
std::vector<BatchCase> cases_from_inputs(const std::vector<std::filesystem::path>& inputs);

// Whether `id` can name a case folder: not empty, no '/', '\\' or control character, no leading
// '.' (so not "." or ".."), at most 128 characters.
bool is_valid_case_id(const std::string& id);

// Runs `write` into a new temporary folder beside `destination` and renames it to `destination`
// when `write` returns, replacing an earlier output there. `destination` must be missing, empty,
// or a previous segment output (holding report.json); otherwise Error, before `write` runs. On
// an exception the temporary folder is removed and the exception propagates: nothing is left
// at `destination` that looks finished.
void write_folder_atomically(const std::filesystem::path& destination,
                             const std::function<void(const std::filesystem::path&)>& write);

// Writes `text` under a temporary name in the same folder and renames it to `path`.
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

struct CaseResult {
  std::string id;
  std::string input;
  std::string status;  // "ok" or "failed"
  std::string error;   // empty when ok
  double seconds = 0;
  std::string output;  // the case folder; empty when failed
};

struct BatchSummary {
  std::vector<CaseResult> cases;
  int failed = 0;
};

// Runs every case into OUTDIR/<id> through write_folder_atomically. A case that throws is
// recorded with its message (prefixed "internal error (a bug in cajal): " unless it is an
// Error) and the next one goes on. Writes summary.json and summary.csv into
// `outdir` (created when missing) at the end.
BatchSummary run_batch(
    const std::vector<BatchCase>& cases, const std::filesystem::path& outdir,
    const std::function<void(const BatchCase&, const std::filesystem::path&)>& run_case);

nlohmann::json to_json(const BatchSummary& summary);
std::string to_csv(const BatchSummary& summary);

}  // namespace cajal::pipeline
