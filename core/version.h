// cajal's version, from the CMake project version.
#pragma once

namespace cajal {
const char* version();
}  // namespace cajal
