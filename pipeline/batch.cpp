#include "pipeline/batch.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

struct CsvRecord {
  int line = 0;  // where the record starts, 1-based
  std::vector<std::string> fields;
};

// RFC 4180: fields separated by commas, optionally in double quotes (which may hold commas,
// newlines and "" for a quote); CRLF or LF line ends.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source) {
  std::vector<CsvRecord> records;
  CsvRecord record{1, {}};
  std::string field;
  bool quoted = false;
  bool field_was_quoted = false;
  int line = 1;
  std::size_t p = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  auto end_record = [&] {
    record.fields.push_back(field);
    const bool blank = record.fields.size() == 1 && field.empty() && !field_was_quoted;
    if (!blank) {
      records.push_back(record);
    }
    field.clear();
    field_was_quoted = false;
    record = CsvRecord{line, {}};
  };
  for (; p < text.size(); ++p) {
    const char c = text[p];
    if (quoted) {
      if (c == '"' && p + 1 < text.size() && text[p + 1] == '"') {
        field += '"';
        ++p;
      } else if (c == '"') {
        quoted = false;
      } else {
        line += c == '\n' ? 1 : 0;
        field += c;
      }
    } else if (c == '"') {
      if (!field.empty() || field_was_quoted) {
        throw Error(source + " line " + std::to_string(line),
                    "a quote only at the start of a field", "a quote inside an unquoted field");
      }
      quoted = true;
      field_was_quoted = true;
    } else if (c == ',') {
      record.fields.push_back(field);
      field.clear();
      field_was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && p + 1 < text.size() && text[p + 1] == '\n') {
        ++p;
      }
      ++line;
      end_record();
    } else {
      if (field_was_quoted) {
        throw Error(source + " line " + std::to_string(line),
                    "a comma or line end after a closing quote", std::string("'") + c + "'");
      }
      field += c;
    }
  }
  if (quoted) {
    throw Error(source + " line " + std::to_string(record.line), "a closing quote",
                "the end of the file");
  }
  end_record();
  return records;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return "";
  }
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::string case_id_of(const fs::path& input) {
  std::string name = input.filename().string();
  if (name.empty()) {
    name = input.parent_path().filename().string();  // "dir/"
  }
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return name.substr(0, name.size() - e.size());
    }
  }
  return name;
}

fs::path temporary_sibling(const fs::path& destination, const std::string& role) {
  static std::atomic<int> counter{0};
  return destination.parent_path() /
         ("." + destination.filename().string() + ".cajal-tmp-" + role + "-" +
          std::to_string(getpid()) + "-" + std::to_string(counter++));
}

void remove_quietly(const fs::path& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    return text;
  }
  std::string out = "\"";
  for (char c : text) {
    out += c == '"' ? "\"\"" : std::string(1, c);
  }
  return out + "\"";
}

}  // namespace

bool is_valid_case_id(const std::string& id) {
  const bool control = std::any_of(id.begin(), id.end(),
                                   [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  return !id.empty() && id.size() <= 128 && id.front() != '.' && !control &&
         id.find_first_of("/\\") == std::string::npos;
}

std::vector<BatchCase> read_manifest(const fs::path& manifest, bool roi_column) {
  std::ifstream in(manifest, std::ios::binary);
  if (!in) {
    throw Error("manifest '" + manifest.string() + "'", "a readable CSV file",
                fs::exists(manifest) ? "a file that cannot be opened" : "nothing");
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string source = "manifest '" + manifest.string() + "'";
  const std::vector<CsvRecord> records = parse_csv(text.str(), source);
  const bool header_ok =
      !records.empty() && records[0].fields.size() >= 2 && trim(records[0].fields[0]) == "id" &&
      trim(records[0].fields[1]) == "path" &&
      (records[0].fields.size() == 2 ||
       (roi_column && records[0].fields.size() == 3 && trim(records[0].fields[2]) == "roi"));
  if (!header_ok) {
    throw Error(source + " line 1",
                roi_column ? "the header 'id,path' or 'id,path,roi'" : "the header 'id,path'",
                records.empty() ? "an empty file" : "another first row");
  }
  const std::size_t columns = records[0].fields.size();
  const auto resolve = [&manifest](const std::string& path) {
    return path.empty() || fs::path(path).is_absolute() ? fs::path(path)
                                                        : manifest.parent_path() / path;
  };
  std::vector<BatchCase> cases;
  std::set<std::string> seen;
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    const std::string where = source + " line " + std::to_string(record.line);
    if (record.fields.size() != columns) {
      throw Error(where, columns == 2 ? "2 fields (id,path)" : "3 fields (id,path,roi)",
                  std::to_string(record.fields.size()));
    }
    const std::string id = trim(record.fields[0]);
    const std::string path = trim(record.fields[1]);
    if (!is_valid_case_id(id)) {
      throw Error(where + ": id", "a folder name (no '/', not starting with '.')", "'" + id + "'");
    }
    if (path.empty()) {
      throw Error(where + ": path", "the input's path", "an empty field");
    }
    if (!seen.insert(id).second) {
      throw Error(where + ": id", "an id not used before", "'" + id + "' again");
    }
    cases.push_back(
        {id, resolve(path), columns == 3 ? resolve(trim(record.fields[2])) : fs::path()});
  }
  if (cases.empty()) {
    throw Error(source, "at least one case after the header", "none");
  }
  return cases;
}

std::vector<BatchCase> cases_from_inputs(const std::vector<fs::path>& inputs) {
  std::vector<BatchCase> cases;
  std::set<std::string> used;
  for (const fs::path& input : inputs) {
    std::string base = case_id_of(input);
    if (!is_valid_case_id(base)) {
      base = "case";
    }
    std::string id = base;
    for (int n = 2; used.count(id) > 0; ++n) {
      id = base + "_" + std::to_string(n);
    }
    used.insert(id);
    cases.push_back({id, input});
  }
  return cases;
}

void write_folder_atomically(const fs::path& folder,
                             const std::function<void(const fs::path&)>& write) {
  // "out/", "./out" and "." name the folder itself, whose sibling the temporary must be.
  fs::path destination = fs::absolute(folder).lexically_normal();
  if (destination.filename().empty()) {
    destination = destination.parent_path();
  }
  const bool exists = fs::exists(destination);
  if (exists && (!fs::is_directory(destination) ||
                 (!fs::is_empty(destination) && !fs::exists(destination / "report.json")))) {
    throw Error("output folder '" + folder.string() + "'",
                "a new or empty folder, or an earlier cajal segment output (with report.json)",
                fs::is_directory(destination) ? "a folder with other files" : "a file");
  }
  if (!destination.parent_path().empty()) {
    fs::create_directories(destination.parent_path());
  }
  const fs::path temporary = temporary_sibling(destination, "new");
  fs::create_directory(temporary);
  try {
    write(temporary);
    if (exists) {
      const fs::path old = temporary_sibling(destination, "old");
      fs::rename(destination, old);
      fs::rename(temporary, destination);
      remove_quietly(old);
    } else {
      fs::rename(temporary, destination);
    }
  } catch (...) {
    remove_quietly(temporary);
    throw;
  }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  const fs::path temporary = temporary_sibling(path, "file");
  {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
    out.close();
    if (!out) {
      remove_quietly(temporary);
      throw Error("'" + path.string() + "'", "a writable file", "a write error");
    }
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    remove_quietly(temporary);
    throw Error("'" + path.string() + "'", "a file that can be renamed into place",
                error.message());
  }
}

BatchSummary run_batch(const std::vector<BatchCase>& cases, const fs::path& outdir,
                       const std::function<void(const BatchCase&, const fs::path&)>& run_case) {
  fs::create_directories(outdir);
  BatchSummary summary;
  for (std::size_t n = 0; n < cases.size(); ++n) {
    const BatchCase& batch_case = cases[n];
    core::log_info("case " + std::to_string(n + 1) + "/" + std::to_string(cases.size()) + ": " +
                   batch_case.id + " (" + batch_case.input.string() + ")");
    CaseResult result{batch_case.id, batch_case.input.string(), "ok", "", 0, ""};
    const auto start = std::chrono::steady_clock::now();
    const fs::path destination = outdir / batch_case.id;
    // Failure isolation is this function's job: any exception from one case, input error or
    // bug, is recorded and the next case runs.
    try {
      write_folder_atomically(destination,
                              [&](const fs::path& folder) { run_case(batch_case, folder); });
      result.output = destination.string();
    } catch (const Error& e) {
      result.status = "failed";
      result.error = e.what();
    } catch (const std::exception& e) {
      result.status = "failed";
      result.error = std::string("internal error (a bug in cajal): ") + e.what();
    }
    if (result.status == "failed") {
      ++summary.failed;
      core::log(core::LogLevel::error, "case " + batch_case.id + " failed: " + result.error);
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.cases.push_back(result);
  }
  write_text_atomically(outdir / "summary.json", to_json(summary).dump(2) + "\n");
  write_text_atomically(outdir / "summary.csv", to_csv(summary));
  return summary;
}

nlohmann::json to_json(const BatchSummary& summary) {
  nlohmann::json cases = nlohmann::json::array();
  for (const CaseResult& c : summary.cases) {
    cases.push_back(
        {{"id", c.id},
         {"input", c.input},
         {"status", c.status},
         {"error", c.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.error)},
         {"seconds", c.seconds},
         {"output", c.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.output)}});
  }
  const int total = static_cast<int>(summary.cases.size());
  return {{"cases", cases},
          {"total", total},
          {"succeeded", total - summary.failed},
          {"failed", summary.failed}};
}

std::string to_csv(const BatchSummary& summary) {
  std::ostringstream out;
  out << "id,input,status,error,seconds,output\n";
  for (const CaseResult& c : summary.cases) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", c.seconds);
    out << csv_field(c.id) << "," << csv_field(c.input) << "," << c.status << ","
        << csv_field(c.error) << "," << seconds << "," << csv_field(c.output) << "\n";
  }
  return out.str();
}

}  // namespace cajal::pipeline
