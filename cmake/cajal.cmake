# Project-wide helpers: warnings, library targets with cajal:: aliases, and tests.

set(CAJAL_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 reports std::string concatenation at -O3 as overlapping memcpy (GCC bug 105329).
  list(APPEND CAJAL_WARNINGS -Wno-restrict)
endif()
if(CAJAL_WERROR)
  list(APPEND CAJAL_WARNINGS -Werror)
endif()

# cajal_add_library(NAME SOURCES ...): a static library cajal_NAME with alias cajal::NAME,
# includes written from the repository root.
function(cajal_add_library name)
  add_library(cajal_${name} STATIC ${ARGN})
  add_library(cajal::${name} ALIAS cajal_${name})
  target_include_directories(cajal_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(cajal_${name} PRIVATE ${CAJAL_WARNINGS})
endfunction()

# cajal_add_test(NAME SOURCES ... LIBS ...): one GoogleTest executable registered with CTest.
function(cajal_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  if(T_LABELS)
    message(FATAL_ERROR "cajal_add_test(${name}): LABELS is not supported (every GoogleTest test "
                        "is labelled 'unit'; select an area with ctest -R)")
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${CAJAL_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  # One label only: gtest_discover_tests (CMake 3.25) splits a list-valued property into
  # separate arguments. Areas are chosen by test name (ctest -R) instead.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS unit ENVIRONMENT "CAJAL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# cajal_find_opencv(MODULE ...): imported targets cajal_opencv::MODULE from Debian's per-module
# packages (libopencv-MODULE-dev).
function(cajal_find_opencv)
  find_path(CAJAL_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  foreach(module ${ARGN})
    find_library(CAJAL_OPENCV_${module}_LIBRARY opencv_${module} REQUIRED)
    add_library(cajal_opencv::${module} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(cajal_opencv::${module} PROPERTIES
      IMPORTED_LOCATION ${CAJAL_OPENCV_${module}_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${CAJAL_OPENCV_INCLUDE_DIR})
  endforeach()
endfunction()
