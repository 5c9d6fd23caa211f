// The models cajal ships (models/<name>/ in the source tree, share/cajal/models/<name>/ when
// installed) and where a command that runs without --model looks for them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cajal::pipeline {

// The CT organ model `cajal segment` runs without --model.
inline constexpr const char* kBundledSegmentModel = "ct-organs";
// The lesion classifier `cajal classify` runs without --model.
inline constexpr const char* kBundledClassifyModel = "lesion-classifier";

// Where the bundled model `name` is looked for, in order: $CAJAL_MODELS/<name> when CAJAL_MODELS
// is set (and nowhere else then); <folder of the cajal binary>/../share/cajal/models/<name> (an
// installed cajal, the Docker image); the source tree's models/<name> (a build in a checkout).
std::vector<std::filesystem::path> bundled_model_candidates(const std::string& name);
// The first candidate holding a model.json, or Error naming `what` and the places looked at.
std::filesystem::path find_bundled_model(const std::string& name, const std::string& what);

}  // namespace cajal::pipeline
