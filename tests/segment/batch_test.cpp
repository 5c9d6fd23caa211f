#include "pipeline/batch.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A scratch folder for one test, removed at its end.
struct TempFolder {
  explicit TempFolder(const std::string& name)
      : path(fs::temp_directory_path() /
             ("cajal_batch_test_" + std::to_string(getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  fs::path path;
};

fs::path write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string error_of(const fs::path& manifest) {
  try {
    read_manifest(manifest);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

bool has_temporary(const fs::path& folder) {
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (entry.path().filename().string().find("cajal-tmp") != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(Manifest, ReadsQuotedFieldsAndResolvesRelativePaths) {
  const TempFolder scratch("manifest_ok");
  const fs::path& folder = scratch.path;
  const fs::path manifest =
      write_file(folder / "m.csv",
                 "\xEF\xBB\xBFid,path\r\na,ct/a.nii.gz\r\n\r\n\"b, 2\",\"/data/x \"\"q\"\".nrrd\"\n"
                 "c,\"multi\nline\"\n");
  const std::vector<BatchCase> cases = read_manifest(manifest);
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].id, "a");
  EXPECT_EQ(cases[0].input, folder / "ct/a.nii.gz");
  EXPECT_EQ(cases[1].id, "b, 2");
  EXPECT_EQ(cases[1].input, fs::path("/data/x \"q\".nrrd"));
  EXPECT_EQ(cases[2].input, folder / "multi\nline");
}

TEST(Manifest, NamesTheLineOfTheFirstBadRow) {
  const TempFolder scratch("manifest_bad");
  const fs::path& folder = scratch.path;
  EXPECT_THAT(error_of(write_file(folder / "h.csv", "name,file\na,b\n")),
              HasSubstr("line 1: expected the header 'id,path'"));
  EXPECT_THAT(error_of(write_file(folder / "f.csv", "id,path\na,x\nb,y,z\n")),
              HasSubstr("line 3: expected 2 fields (id,path), got 3"));
  EXPECT_THAT(error_of(write_file(folder / "d.csv", "id,path\na,\"x\ny\"\na,z\n")),
              HasSubstr("line 4: id: expected an id not used before"));
  EXPECT_THAT(error_of(write_file(folder / "s.csv", "id,path\n../up,x\n")),
              HasSubstr("line 2: id: expected a folder name"));
  EXPECT_THAT(error_of(write_file(folder / "e.csv", "id,path\na,\n")),
              HasSubstr("line 2: path: expected the input's path, got an empty field"));
  EXPECT_THAT(error_of(write_file(folder / "q.csv", "id,path\na,\"x\n")),
              HasSubstr("line 2: expected a closing quote"));
  EXPECT_THAT(error_of(write_file(folder / "n.csv", "id,path\n")),
              HasSubstr("expected at least one case"));
  EXPECT_THAT(error_of(folder / "missing.csv"), HasSubstr("got nothing"));
}

TEST(Batch, CaseIdsComeFromFileNamesWithoutExtensionsAndAreUnique) {
  const auto cases = cases_from_inputs(
      {"in/p1.nii.gz", "other/p1.nrrd", "dicom/study7/", "x/p1.mha", "scan.dcm", "ct"});
  std::vector<std::string> ids;
  for (const BatchCase& c : cases) {
    ids.push_back(c.id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"p1", "p1_2", "study7", "p1_3", "scan", "ct"}));
}

TEST(Batch, RecordsAFailedCaseAndRunsTheOthers) {
  const TempFolder scratch("isolation");
  const fs::path out = scratch.path / "out";
  const std::vector<BatchCase> cases{
      {"one", "a"}, {"bad", "b, \"c\""}, {"three", "c"}, {"buggy", "d"}};
  const BatchSummary summary = run_batch(cases, out, [](const BatchCase& c, const fs::path& dir) {
    write_file(dir / "result.txt", c.id);
    if (c.id == "bad") {
      throw Error("input 'b'", "a volume", "junk, really");
    }
    if (c.id == "buggy") {
      throw InternalError("broken invariant");
    }
  });
  EXPECT_EQ(summary.failed, 2);
  ASSERT_EQ(summary.cases.size(), 4u);
  EXPECT_EQ(summary.cases[1].status, "failed");
  EXPECT_EQ(summary.cases[1].error, "input 'b': expected a volume, got junk, really");
  EXPECT_EQ(summary.cases[2].status, "ok");
  EXPECT_EQ(summary.cases[3].error, "internal error (a bug in cajal): broken invariant");
  EXPECT_EQ(read_file(out / "one" / "result.txt"), "one");
  EXPECT_EQ(read_file(out / "three" / "result.txt"), "three");
  EXPECT_FALSE(fs::exists(out / "bad"));
  EXPECT_FALSE(has_temporary(out));
  const auto json = nlohmann::json::parse(read_file(out / "summary.json"));
  EXPECT_EQ(json["failed"], 2);
  EXPECT_EQ(json["cases"][1]["output"], nullptr);
  EXPECT_EQ(json["cases"][0]["output"], (out / "one").string());
  const std::string csv = read_file(out / "summary.csv");
  EXPECT_THAT(csv, HasSubstr("id,input,status,error,seconds,output\none,a,ok,,"));
  EXPECT_THAT(csv, HasSubstr("\nbad,\"b, \"\"c\"\"\",failed,\"input 'b': expected a volume, got "
                             "junk, really\","));
}

TEST(Batch, AnInterruptedCaseLeavesNothingThatLooksFinished) {
  const TempFolder scratch("atomic");
  const fs::path out = scratch.path / "case";
  EXPECT_THROW(write_folder_atomically(out,
                                       [](const fs::path& dir) {
                                         write_file(dir / "report.json", "{}");
                                         throw Error("stopped halfway");
                                       }),
               Error);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_temporary(out.parent_path()));
}

TEST(Batch, ReplacesAnEarlierOutputButNotAForeignFolder) {
  const TempFolder scratch("replace");
  const fs::path& root = scratch.path;
  const fs::path out = root / "case";
  write_folder_atomically(out, [](const fs::path& dir) {
    write_file(dir / "report.json", "old");
    write_file(dir / "stale.txt", "x");
  });
  write_folder_atomically(out, [](const fs::path& dir) { write_file(dir / "report.json", "new"); });
  EXPECT_EQ(read_file(out / "report.json"), "new");
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  write_folder_atomically(out.string() + "/",
                          [](const fs::path& dir) { write_file(dir / "report.json", "slash"); });
  EXPECT_EQ(read_file(out / "report.json"), "slash");
  const fs::path foreign = root / "home";
  fs::create_directories(foreign);
  write_file(foreign / "thesis.tex", "precious");
  bool ran = false;
  EXPECT_THROW(write_folder_atomically(foreign, [&ran](const fs::path&) { ran = true; }), Error);
  EXPECT_FALSE(ran);
  EXPECT_EQ(read_file(foreign / "thesis.tex"), "precious");
  EXPECT_FALSE(has_temporary(root));
}

}  // namespace
}  // namespace cajal::pipeline
