#include "pipeline/phantom_lesions.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/gzip.h"
#include "pipeline/phantom.h"
#include "pipeline/sha256.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

PhantomOptions small_options(std::uint64_t seed, const fs::path& output) {
  PhantomOptions options;
  options.seed = seed;
  options.size = {112, 96, 64};
  options.in_plane_spacing = 3.0;
  options.slice_thickness = 6.0;
  options.output = output;
  return options;
}

// SHA-256 of each file a case folder holds, of the decompressed bytes for .gz files (headers and
// voxels, whatever the compression level).
std::map<std::string, std::string> digests(const fs::path& folder) {
  std::map<std::string, std::string> result;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    result[name] = entry.path().extension() == ".gz" ? sha256_hex(io::gunzip_file(entry.path()))
                                                     : sha256_file(entry.path());
  }
  return result;
}

fs::path fresh_folder(const std::string& name) {
  const fs::path folder = fs::temp_directory_path() / ("cajal_phantom_lesions_test_" + name);
  fs::remove_all(folder);
  return folder;
}

TEST(PhantomLesions, CaseWithoutLesionsKeepsItsBytes) {
  // Digests of the volumes cajal wrote before lesions existed: --lesions off changes nothing.
  // (labels.json names the generator's version, so it changes with every commit.) The digests
  // are of the NIfTI inside the gzip: 27e2810's `cajal phantom --count 2 --seed 5 --size
  // 112x96x64 --spacing 3x6` case_0001 gives them (its files' own digests were 315af865... and
  // 84ac9971..., the ones this test checked before cajal compressed at level 1).
  const fs::path folder = fresh_folder("golden");
  const PhantomOptions options = small_options(5, folder);
  write_phantom_case(generate_phantom_case(make_phantom_case_spec(options, 1)), options);
  const std::map<std::string, std::string> expected = {
      {"ct.nii.gz", "0e4dac5f7e832cf23549ba8a7d6f38d45998d6da29ef114dcd9719099f2ceee3"},
      {"labels.nii.gz", "dc0e44f49695db91bd8544d50d3cee2ee2d49b16c872c2685273174ba38294e1"}};
  std::map<std::string, std::string> actual = digests(folder / "case_0001");
  actual.erase("labels.json");
  EXPECT_EQ(actual, expected);
  fs::remove_all(folder);
}

PhantomCase lesion_case(std::uint64_t seed, int threads = 1) {
  PhantomOptions options = small_options(seed, "");
  options.orientation = "LPS";  // stored as rendered: voxel n is canonical voxel n
  options.lesions = true;
  return generate_phantom_case(make_phantom_case_spec(options, 0), threads);
}

// Lesion cases of seeds 1..8, made once.
const std::vector<PhantomCase>& lesion_cases() {
  static const std::vector<PhantomCase> cases = [] {
    std::vector<PhantomCase> result;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      result.push_back(lesion_case(seed));
    }
    return result;
  }();
  return cases;
}

TEST(PhantomLesions, SameSeedGivesSameLesionsWhateverTheThreadCount) {
  const PhantomCase& one = lesion_cases()[2];
  const PhantomCase three = lesion_case(3, 3);
  EXPECT_EQ(one.ct.pixels, three.ct.pixels);
  ASSERT_TRUE(one.lesion_labels && three.lesion_labels);
  EXPECT_EQ(one.lesion_labels->pixels, three.lesion_labels->pixels);
  ASSERT_EQ(one.lesions.size(), three.lesions.size());
  for (std::size_t n = 0; n < one.lesions.size(); ++n) {
    EXPECT_EQ(one.lesions[n].centre, three.lesions[n].centre);
    EXPECT_EQ(one.lesions[n].size_mm, three.lesions[n].size_mm);
  }
  EXPECT_NE(one.lesion_labels->pixels, lesion_cases()[3].lesion_labels->pixels);
}

TEST(PhantomLesions, SameSeedWritesSameFiles) {
  const fs::path folder = fresh_folder("bytes");
  PhantomOptions options = small_options(4, folder / "a");
  options.lesions = true;
  write_phantom_case(generate_phantom_case(make_phantom_case_spec(options, 0), 1), options);
  options.output = folder / "b";
  write_phantom_case(generate_phantom_case(make_phantom_case_spec(options, 0), 2), options);
  const std::map<std::string, std::string> a = digests(folder / "a" / "case_0000");
  EXPECT_EQ(a, digests(folder / "b" / "case_0000"));
  EXPECT_EQ(a.count("lesions.nii.gz") + a.count("lesions.json") + a.count("lesions.csv"), 3u);
  fs::remove_all(folder);
}

TEST(PhantomLesions, ClassesSizesAndFeaturesStayInTheirDocumentedRanges) {
  std::map<std::string, int> classes, organs, edges;
  for (const PhantomCase& c : lesion_cases()) {
    EXPECT_GE(c.lesions.size(), 1u);
    EXPECT_LE(c.lesions.size(), 4u);
    for (const PhantomLesion& lesion : c.lesions) {
      ++classes[lesion.label];
      ++organs[lesion.organ];
      ++edges[lesion.touches_organ_edge ? "edge" : "inside"];
      EXPECT_GE(lesion.size_mm, 5.0) << c.spec.case_seed << " lesion " << lesion.id;
      EXPECT_LE(lesion.size_mm, 40.0) << c.spec.case_seed << " lesion " << lesion.id;
      EXPECT_GE(lesion.voxels, 1);
      if (lesion.label == "malignant") {
        EXPECT_TRUE(lesion.margin == "lobulated" || lesion.margin == "spiculated");
        EXPECT_GE(lesion.oedema_mm, 2.0);
        EXPECT_LE(lesion.oedema_mm, 6.0);
        EXPECT_EQ(lesion.necrotic_core, lesion.size_mm >= 10.0);
      } else {
        EXPECT_EQ(lesion.label, "benign");
        EXPECT_EQ(lesion.margin, "smooth");
        EXPECT_EQ(lesion.oedema_mm, 0.0);
        EXPECT_FALSE(lesion.necrotic_core);
      }
    }
  }
  EXPECT_EQ(classes.size(), 2u) << "both classes over 8 cases";
  EXPECT_EQ(edges.size(), 2u) << "lesions inside and touching the edge over 8 cases";
  EXPECT_GE(organs.size(), 3u);
}

// Whether any of the six neighbours of voxel (i, j, k) lies outside `organ` in the label map.
bool borders_other_tissue(const core::Volume& labels, std::int64_t i, std::int64_t j,
                          std::int64_t k, int organ) {
  const core::Index3& n = labels.geometry.size;
  const std::int64_t steps[6][3] = {{1, 0, 0},  {-1, 0, 0}, {0, 1, 0},
                                    {0, -1, 0}, {0, 0, 1},  {0, 0, -1}};
  for (const auto& s : steps) {
    const std::int64_t a = i + s[0], b = j + s[1], c = k + s[2];
    if (a < 0 || b < 0 || c < 0 || a >= n[0] || b >= n[1] || c >= n[2] ||
        static_cast<int>(labels.pixels[static_cast<std::size_t>(a + n[0] * (b + n[1] * c))]) !=
            organ) {
      return true;
    }
  }
  return false;
}

TEST(PhantomLesions, EachLesionLiesInItsOrganAndTouchesItsEdgeOnlyWhenFlagged) {
  for (const PhantomCase& c : lesion_cases()) {
    const core::Index3& n = c.labels.geometry.size;
    for (const PhantomLesion& lesion : c.lesions) {
      std::int64_t voxels = 0, outside = 0, bordering = 0;
      for (std::int64_t k = 0; k < n[2]; ++k) {
        for (std::int64_t j = 0; j < n[1]; ++j) {
          for (std::int64_t i = 0; i < n[0]; ++i) {
            const std::size_t v = static_cast<std::size_t>(i + n[0] * (j + n[1] * k));
            if (static_cast<int>(c.lesion_labels->pixels[v]) != lesion.id) {
              continue;
            }
            ++voxels;
            outside += static_cast<int>(c.labels.pixels[v]) != lesion.organ_label ? 1 : 0;
            bordering += borders_other_tissue(c.labels, i, j, k, lesion.organ_label) ? 1 : 0;
          }
        }
      }
      const std::string where = "case seed " + std::to_string(c.spec.case_seed) + " lesion " +
                                std::to_string(lesion.id) + " in " + lesion.organ;
      EXPECT_EQ(voxels, lesion.voxels) << where;
      EXPECT_EQ(outside, 0) << where;
      if (lesion.touches_organ_edge) {
        EXPECT_GT(bordering, 0) << where;
      } else {
        EXPECT_EQ(bordering, 0) << where;
      }
      const core::Vec3 index = c.lesion_labels->geometry.physical_to_index(lesion.centre);
      const std::size_t centre = static_cast<std::size_t>(
          std::lround(index[0]) + n[0] * (std::lround(index[1]) + n[1] * std::lround(index[2])));
      EXPECT_EQ(static_cast<int>(c.lesion_labels->pixels[centre]), lesion.id) << where;
    }
  }
}

TEST(PhantomLesions, BenignLesionsHaveTheirAttenuationInTheCt) {
  int checked = 0;
  for (const PhantomCase& c : lesion_cases()) {
    for (const PhantomLesion& lesion : c.lesions) {
      if (lesion.label != "benign" || lesion.voxels < 8) {
        continue;
      }
      double sum = 0;
      for (std::size_t v = 0; v < c.ct.pixels.size(); ++v) {
        sum += static_cast<int>(c.lesion_labels->pixels[v]) == lesion.id ? c.ct.pixels[v] : 0.0;
      }
      // Noise (sigma <= 20 HU) and partial volume at the rim blur the mean a little.
      EXPECT_NEAR(sum / static_cast<double>(lesion.voxels), lesion.hu,
                  0.35 * std::abs(lesion.hu - lesion.organ_hu) + 10.0)
          << "case seed " << c.spec.case_seed << " lesion " << lesion.id;
      ++checked;
    }
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace cajal::pipeline
