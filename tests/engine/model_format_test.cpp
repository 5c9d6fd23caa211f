#include "models/model.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/safetensors.h"

namespace cajal::models {
namespace {

namespace fs = std::filesystem;

// A one-layer model folder in a fresh temporary directory, for the tests to damage.
class ModelFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cajal_model_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    spec_ = {
        {"format", "cajal-model"},
        {"format_version", 1},
        {"inputs", {"image"}},
        {"outputs", {"logits"}},
        {"layers",
         {{{"name", "enc0.conv1"},
           {"type", "convolution"},
           {"inputs", {"image"}},
           {"output", "logits"},
           {"params", {{"in_channels", 1}, {"out_channels", 16}, {"kernel_size", {3, 3, 3}}}}}}},
        {"run", {{"input_channels", 1}, {"spatial_dims", 3}}}};
    card_ = {{"name", "test"},
             {"version", "1.0.0"},
             {"intended_use", "tests"},
             {"metrics", {{"dice", 0.9}}},
             {"provenance", {{"by", "model_format_test"}}}};
    weights_ = {{"enc0.conv1.weight", engine::Tensor({16, 1, 3, 3, 3}, 0.5f)},
                {"enc0.conv1.bias", engine::Tensor({16}, 0.1f)}};
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write_all() {
    std::ofstream(dir_ / "model.json") << spec_.dump();
    std::ofstream(dir_ / "card.json") << card_.dump();
    write_safetensors(dir_ / "weights.safetensors", weights_);
  }
  // The message of the cajal::Error that loading throws.
  std::string load_error() {
    write_all();
    try {
      Model::load(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  bool says(const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
  }

  fs::path dir_;
  nlohmann::json spec_;
  nlohmann::json card_;
  engine::WeightMap weights_;
};

TEST_F(ModelFolder, LoadsAValidFolder) {
  EXPECT_EQ(load_error(), "no error");
  write_all();
  auto model = Model::load(dir_);
  EXPECT_EQ(model.spec().run.spatial_dims, 3);
  EXPECT_EQ(model.card().version, "1.0.0");
  EXPECT_EQ(model.net().parameter_count(), 16 * 27 + 16);
}

TEST_F(ModelFolder, NamesATensorOfAnotherShape) {
  weights_["enc0.conv1.weight"] = engine::Tensor({16, 1, 3, 3});
  EXPECT_EQ(load_error(),
            "tensor 'enc0.conv1.weight': expected shape [16,1,3,3,3], got [16,1,3,3]");
}

TEST_F(ModelFolder, NamesAMissingTensor) {
  weights_.erase("enc0.conv1.bias");
  EXPECT_TRUE(says(load_error(), "tensor 'enc0.conv1.bias'"));
}

TEST_F(ModelFolder, RejectsAnExtraTensor) {
  weights_["enc0.conv2.weight"] = engine::Tensor({1});
  EXPECT_TRUE(says(load_error(), "tensor 'enc0.conv2.weight'"));
}

TEST_F(ModelFolder, RejectsAnUnknownLayerType) {
  spec_["layers"][0]["type"] = "conv3d";
  EXPECT_TRUE(says(load_error(), "got 'conv3d'"));
}

TEST_F(ModelFolder, RejectsAnUnknownLayerParam) {
  spec_["layers"][0]["params"]["padding_mode"] = "zeros";
  EXPECT_TRUE(says(load_error(), "unknown key 'padding_mode'"));
}

TEST_F(ModelFolder, RejectsAnUnknownTopLevelKey) {
  spec_["optimizer"] = "adam";
  EXPECT_TRUE(says(load_error(), "unknown key 'optimizer'"));
}

TEST_F(ModelFolder, RejectsAnotherFormatVersion) {
  spec_["format_version"] = 2;
  EXPECT_TRUE(says(load_error(), "key 'format_version': expected 1, got 2"));
}

TEST_F(ModelFolder, RejectsAPatchSizeOfOtherRank) {
  spec_["run"]["patch_size"] = {96, 96};
  EXPECT_TRUE(says(load_error(), "key 'patch_size'"));
}

TEST_F(ModelFolder, RejectsACardWithoutVersion) {
  card_.erase("version");
  EXPECT_TRUE(says(load_error(), "key 'version'"));
}

TEST_F(ModelFolder, RejectsModelJsonThatIsNotJson) {
  write_all();
  std::ofstream(dir_ / "model.json") << "{\"format\": ";
  EXPECT_THROW(Model::load(dir_), Error);
}

// Bytes of a safetensors file with this header text and `data` bytes of zeros.
std::string safetensors_bytes(const std::string& header, std::size_t data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  }
  return bytes + header + std::string(data, '\0');
}

TEST(Safetensors, RoundTripsNamedTensors) {
  const auto path = fs::temp_directory_path() / "cajal_safetensors_roundtrip.safetensors";
  const engine::WeightMap tensors{{"a", engine::Tensor({2, 3}, {1, 2, 3, 4, 5, 6})},
                                  {"b", engine::Tensor({1}, 7.0f)}};
  write_safetensors(path, tensors);
  const auto back = read_safetensors(path);
  fs::remove(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("a").dims(), (engine::Dims{2, 3}));
  EXPECT_EQ(back.at("a").data()[5], 6.0f);
  EXPECT_EQ(back.at("b").data()[0], 7.0f);
}

TEST(Safetensors, RejectsAHeaderLongerThanTheFile) {
  auto bytes = safetensors_bytes("{}", 0);
  bytes[0] = 100;
  EXPECT_THROW(parse_safetensors(bytes, "f"), Error);
}

TEST(Safetensors, RejectsAFileShorterThanItsHeaderLength) {
  EXPECT_THROW(parse_safetensors("abc", "f"), Error);
}

TEST(Safetensors, RejectsOffsetsPastTheData) {
  const auto header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(parse_safetensors(safetensors_bytes(header, 8), "f"));
  EXPECT_THROW(parse_safetensors(safetensors_bytes(header, 4), "f"), Error);
}

TEST(Safetensors, RejectsBytesThatDoNotFitTheShape) {
  const auto header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  EXPECT_THROW(parse_safetensors(safetensors_bytes(header, 8), "f"), Error);
}

TEST(Safetensors, RejectsOverlappingTensors) {
  const auto header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  EXPECT_THROW(parse_safetensors(safetensors_bytes(header, 12), "f"), Error);
}

TEST(Safetensors, RejectsTrailingBytes) {
  const auto header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_THROW(parse_safetensors(safetensors_bytes(header, 8), "f"), Error);
}

TEST(Safetensors, RejectsDataTypesOtherThanF32) {
  // The bytes would fit two f32 values; only the dtype is wrong.
  const auto header = R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})";
  try {
    parse_safetensors(safetensors_bytes(header, 8), "f");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "f: tensor 'w': dtype: expected \"F32\", got \"F16\"");
  }
}

TEST(Safetensors, RejectsAShapeOfNegativeSizes) {
  const auto header = R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  EXPECT_THROW(parse_safetensors(safetensors_bytes(header, 4), "f"), Error);
}

}  // namespace
}  // namespace cajal::models
