#include "pipeline/phantom.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

// Small cases at a realistic scale (3 mm pixels, 6 mm slices), quick to make.
PhantomOptions small_options(std::uint64_t seed, const std::string& orientation) {
  PhantomOptions options;
  options.seed = seed;
  options.size = {112, 96, 64};
  options.in_plane_spacing = 3.0;
  options.slice_thickness = 6.0;
  options.orientation = orientation;
  return options;
}

struct Centroid {
  core::Vec3 mm{0, 0, 0};
  std::int64_t voxels = 0;
};

// Centroid of every label in physical coordinates (mm, LPS).
std::map<std::string, Centroid> centroids(const core::Volume& labels) {
  std::map<int, std::string> names;
  for (const PhantomLabel& label : phantom_labels()) {
    names[label.value] = label.name;
  }
  std::map<std::string, Centroid> out;
  const core::Geometry& g = labels.geometry;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        const int value = static_cast<int>(labels.pixels[n]);
        if (value == 0) {
          continue;
        }
        const core::Vec3 p = g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        Centroid& c = out[names.at(value)];
        for (int a = 0; a < 3; ++a) {
          c.mm[a] += p[a];
        }
        ++c.voxels;
      }
    }
  }
  for (auto& [name, c] : out) {
    for (int a = 0; a < 3; ++a) {
      c.mm[a] /= static_cast<double>(c.voxels);
    }
  }
  return out;
}

class PhantomSides : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

// LPS: +x is the patient's left, +y posterior, +z superior.
TEST_P(PhantomSides, OrgansLieOnTheirAnatomicalSideInLps) {
  const auto& [seed, orientation] = GetParam();
  const PhantomOptions options = small_options(static_cast<std::uint64_t>(seed), orientation);
  const PhantomCase phantom = generate_phantom_case(make_phantom_case_spec(options, 0));
  const auto c = centroids(phantom.labels);
  ASSERT_EQ(c.size(), phantom_labels().size()) << "every label is present";
  const auto x = [&](const char* name) { return c.at(name).mm[0]; };
  EXPECT_LT(x("Liver"), x("Spleen")) << "liver on the patient's right, spleen on the left";
  EXPECT_LT(x("Lung_R"), x("Lung_L"));
  EXPECT_LT(x("Kidney_R"), x("Kidney_L"));
  EXPECT_GT(x("Heart"), x("SpinalCord")) << "heart shifted to the patient's left";
  EXPECT_GT(x("Aorta"), x("SpinalCord")) << "aorta left of the spine";
  EXPECT_LT(x("Lung_R"), x("SpinalCord"));
  EXPECT_GT(x("Lung_L"), x("SpinalCord"));
  EXPECT_LT(c.at("Heart").mm[1], c.at("SpinalCord").mm[1]) << "heart anterior of the cord";
  EXPECT_LT(c.at("Esophagus").mm[1], c.at("SpinalCord").mm[1]) << "oesophagus anterior";
  EXPECT_GT(c.at("Lung_R").mm[2], c.at("Liver").mm[2]) << "lungs above the liver";
  EXPECT_GT(c.at("Heart").mm[2], c.at("Kidney_L").mm[2]) << "heart above the kidneys";
}

INSTANTIATE_TEST_SUITE_P(SeedsAndOrientations, PhantomSides,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4),
                                            ::testing::Values("LPS", "RAS", "LIP", "RPI")));

TEST(Phantom, StoredOrientationKeepsEveryVoxelInPlace) {
  const PhantomCase lps = generate_phantom_case(make_phantom_case_spec(small_options(9, "LPS"), 0));
  const PhantomCase lip = generate_phantom_case(make_phantom_case_spec(small_options(9, "LIP"), 0));
  EXPECT_EQ(lip.ct.geometry.size, (core::Index3{112, 64, 96}));
  // Every LPS voxel's centre, mapped into the LIP grid, lands on a voxel with the same values.
  const core::Geometry& g = lps.ct.geometry;
  std::size_t n = 0, checked = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        if ((i + j + k) % 7 != 0) {
          continue;
        }
        const core::Vec3 p = g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        const core::Vec3 q = lip.ct.geometry.physical_to_index(p);
        const auto r = [](double v) { return static_cast<std::int64_t>(std::lround(v)); };
        for (double v : q) {
          ASSERT_NEAR(v, std::round(v), 1e-6);
        }
        EXPECT_EQ(lps.ct.pixels[n], lip.ct.at(r(q[0]), r(q[1]), r(q[2])));
        EXPECT_EQ(lps.labels.pixels[n], lip.labels.at(r(q[0]), r(q[1]), r(q[2])));
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10000u);
}

TEST(Phantom, SameSeedGivesSameVoxelsWhateverTheThreadCount) {
  const PhantomCaseSpec spec = make_phantom_case_spec(small_options(5, "vary"), 3);
  const PhantomCase one = generate_phantom_case(spec, 1);
  const PhantomCase three = generate_phantom_case(spec, 3);
  EXPECT_EQ(one.ct.pixels, three.ct.pixels);
  EXPECT_EQ(one.labels.pixels, three.labels.pixels);
  const PhantomCase other =
      generate_phantom_case(make_phantom_case_spec(small_options(6, "vary"), 3));
  EXPECT_NE(one.ct.pixels, other.ct.pixels);
}

TEST(Phantom, CaseDependsOnlyOnSeedAndIndex) {
  PhantomOptions options = small_options(5, "vary");
  const PhantomCaseSpec a = make_phantom_case_spec(options, 2);
  options.count = 10;
  const PhantomCaseSpec b = make_phantom_case_spec(options, 2);
  EXPECT_EQ(a.case_seed, b.case_seed);
  EXPECT_EQ(a.case_id, "case_0002");
  EXPECT_NE(a.case_seed, make_phantom_case_spec(options, 3).case_seed);
}

TEST(Phantom, CasesVaryInSpacingOrientationAndNoise) {
  PhantomOptions options;
  std::map<std::string, int> orientations;
  double min_spacing = 9, max_spacing = 0, min_thickness = 9, max_thickness = 0;
  for (int index = 0; index < 60; ++index) {
    const PhantomCaseSpec spec = make_phantom_case_spec(options, index);
    ++orientations[spec.orientation];
    min_spacing = std::min(min_spacing, spec.grid.spacing[0]);
    max_spacing = std::max(max_spacing, spec.grid.spacing[0]);
    min_thickness = std::min(min_thickness, spec.grid.spacing[2]);
    max_thickness = std::max(max_thickness, spec.grid.spacing[2]);
    EXPECT_GE(spec.noise_sigma, 10.0);
    EXPECT_LE(spec.noise_sigma, 20.0);
  }
  EXPECT_GE(orientations.size(), 4u);
  EXPECT_GE(min_spacing, 0.6);
  EXPECT_LE(max_spacing, 1.0);
  EXPECT_GT(max_spacing - min_spacing, 0.25);
  EXPECT_GE(min_thickness, 1.0);
  EXPECT_LE(max_thickness, 5.0);
}

// Median HU over the voxels of a label whose 6 neighbours share it (away from edges).
float interior_median(const PhantomCase& phantom, int label) {
  std::vector<float> values;
  const core::Geometry& g = phantom.labels.geometry;
  for (std::int64_t k = 1; k + 1 < g.size[2]; ++k) {
    for (std::int64_t j = 1; j + 1 < g.size[1]; ++j) {
      for (std::int64_t i = 1; i + 1 < g.size[0]; ++i) {
        const auto& l = phantom.labels;
        if (l.at(i, j, k) == static_cast<float>(label) && l.at(i - 1, j, k) == l.at(i + 1, j, k) &&
            l.at(i, j - 1, k) == l.at(i, j + 1, k) && l.at(i, j, k - 1) == l.at(i, j, k + 1) &&
            l.at(i - 1, j, k) == l.at(i, j, k) && l.at(i, j - 1, k) == l.at(i, j, k) &&
            l.at(i, j, k - 1) == l.at(i, j, k)) {
          values.push_back(phantom.ct.at(i, j, k));
        }
      }
    }
  }
  if (values.empty()) {
    return -9999.0f;
  }
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2),
                   values.end());
  return values[values.size() / 2];
}

TEST(Phantom, OrgansHaveRealisticAttenuation) {
  PhantomOptions options = small_options(4, "LPS");
  options.in_plane_spacing = 2.0;
  options.size = {180, 150, 64};
  const PhantomCase phantom = generate_phantom_case(make_phantom_case_spec(options, 0));
  EXPECT_NEAR(interior_median(phantom, 5), 60, 15) << "liver";
  EXPECT_NEAR(interior_median(phantom, 6), 50, 15) << "spleen";
  EXPECT_NEAR(interior_median(phantom, 4), 42, 15) << "heart";
  EXPECT_NEAR(interior_median(phantom, 2), -850, 40) << "left lung";
  EXPECT_NEAR(interior_median(phantom, 7), 35, 15) << "left kidney";
  EXPECT_EQ(phantom.ct.pixel_type, core::PixelType::int16);
  EXPECT_EQ(phantom.labels.pixel_type, core::PixelType::uint8);
  EXPECT_EQ(phantom.ct.at(0, 0, 0) < -900, true) << "air in the corner";
}

TEST(Phantom, UidsAreValidDistinctAndReproducible) {
  const std::string study = phantom_uid(42, 1);
  EXPECT_EQ(study.rfind("2.25.", 0), 0u);
  EXPECT_LE(study.size(), 44u);
  EXPECT_EQ(study.find_first_not_of("0123456789.", 0), std::string::npos);
  EXPECT_NE(study[5], '0');
  EXPECT_EQ(study, phantom_uid(42, 1));
  EXPECT_NE(study, phantom_uid(42, 2));
  EXPECT_NE(study, phantom_uid(43, 1));
}

TEST(Phantom, RefusesBadOrientationCodes) {
  EXPECT_THROW(direction_of_orientation("LLS"), Error);
  EXPECT_THROW(direction_of_orientation("LP"), Error);
  EXPECT_THROW(direction_of_orientation("XYZ"), Error);
  const core::Mat3 lip = direction_of_orientation("LIP");
  EXPECT_EQ(lip, (core::Mat3{1, 0, 0, 0, 0, 1, 0, -1, 0}));
}

}  // namespace
}  // namespace cajal::pipeline
