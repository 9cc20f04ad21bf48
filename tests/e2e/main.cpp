// The e2e_tests executable's main(): doctest's own, so ctest (via
// doctest_discover_tests) can list and run each TEST_CASE by name.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
