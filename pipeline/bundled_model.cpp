#include "pipeline/bundled_model.h"

#include <cstdlib>
#include <system_error>

#include "core/error.h"

namespace cajal::pipeline {

namespace fs = std::filesystem;

std::vector<fs::path> bundled_model_candidates(const std::string& name) {
  if (const char* models = std::getenv("CAJAL_MODELS"); models != nullptr) {
    return {fs::path(models) / name};
  }
  std::vector<fs::path> candidates;
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    candidates.push_back(
        (exe.parent_path() / ".." / "share" / "cajal" / "models" / name).lexically_normal());
  }
#ifdef CAJAL_SOURCE_DIR
  candidates.push_back(fs::path(CAJAL_SOURCE_DIR) / "models" / name);
#endif
  return candidates;
}

fs::path find_bundled_model(const std::string& name, const std::string& what) {
  const auto candidates = bundled_model_candidates(name);
  std::string looked;
  for (const auto& dir : candidates) {
    if (fs::is_regular_file(dir / "model.json")) {
      return dir;
    }
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  throw Error("the bundled " + what + " 'models/" + name + "/'",
              "a model folder (or pass --model DIR)", "none found at " + looked);
}

}  // namespace cajal::pipeline
