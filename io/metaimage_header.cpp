#include "io/metaimage_header.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace cajal::io::detail {
namespace {

std::string trimmed(const std::string& text) {
  const std::size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string::npos) {
    return {};
  }
  return text.substr(begin, text.find_last_not_of(" \t\r") - begin + 1);
}

// Every whitespace-separated word of `text` as a number; nothing when one is not a number.
bool parse_numbers(const std::string& text, std::vector<double>& numbers) {
  std::istringstream words(text);
  std::string word;
  numbers.clear();
  while (words >> word) {
    std::size_t used = 0;
    try {
      numbers.push_back(std::stod(word, &used));
    } catch (const std::exception&) {
      return false;
    }
    if (used != word.size()) {
      return false;
    }
  }
  return true;
}

}  // namespace

void check_metaimage_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return;  // ITK then says it cannot open the file
  }
  // Fields up to ElementDataFile (the last one; the pixels may follow it in an .mha), within the
  // first 64 KiB.
  std::map<std::string, std::string> fields;
  std::string line;
  std::size_t read = 0;
  for (int lines = 0; lines < 200 && read < (std::size_t{64} << 10) && std::getline(in, line);
       ++lines) {
    read += line.size() + 1;
    const std::size_t equals = line.find('=');
    if (equals == std::string::npos) {
      continue;
    }
    const std::string key = trimmed(line.substr(0, equals));
    fields[key] = trimmed(line.substr(equals + 1));
    if (key == "ElementDataFile") {
      break;
    }
  }
  const std::string what = "MetaImage header of '" + path.string() + "'";
  std::vector<double> numbers;
  const auto field = [&](const std::string& key) -> const std::string* {
    const auto found = fields.find(key);
    return found == fields.end() ? nullptr : &found->second;
  };
  const std::string* ndims_text = field("NDims");
  if (ndims_text == nullptr) {
    throw Error(what, "an NDims field", "none");
  }
  if (!parse_numbers(*ndims_text, numbers) || numbers.size() != 1 || numbers[0] < 1 ||
      numbers[0] > 4 || numbers[0] != std::floor(numbers[0])) {
    throw Error(what, "NDims 1 to 4", "'" + *ndims_text + "'");
  }
  const auto ndims = static_cast<std::size_t>(numbers[0]);
  const std::string count = std::to_string(ndims);
  const auto check = [&](const std::string& key, std::size_t expected, bool positive, bool integral,
                         const std::string& description) {
    const std::string* text = field(key);
    if (text == nullptr) {
      return;
    }
    bool good = parse_numbers(*text, numbers) && numbers.size() == expected;
    for (const double value : numbers) {
      good = good && std::isfinite(value) && (!positive || value > 0) &&
             (!integral || value == std::floor(value));
    }
    if (!good) {
      throw Error(what, key + " as " + description, "'" + *text + "'");
    }
  };
  if (field("DimSize") == nullptr) {
    throw Error(what, "a DimSize field", "none");
  }
  check("DimSize", ndims, true, true, count + " positive integers (NDims " + count + ")");
  for (const char* key : {"ElementSpacing", "ElementSize"}) {
    check(key, ndims, true, false, count + " positive numbers (NDims " + count + ")");
  }
  for (const char* key : {"Offset", "Position", "Origin"}) {
    check(key, ndims, false, false, count + " finite numbers (NDims " + count + ")");
  }
  for (const char* key : {"TransformMatrix", "Rotation", "Orientation"}) {
    check(key, ndims * ndims, false, false,
          std::to_string(ndims * ndims) + " finite numbers (NDims " + count + ")");
  }
  check("ElementNumberOfChannels", 1, true, true, "a positive integer");
}

}  // namespace cajal::io::detail
