// The main() of the doctest binaries. Include it from exactly one file.
//
// It fails a run whose filter selects no test case: ctest runs each case by
// name, and a name that does not select itself (CMake splits names at ';')
// would otherwise pass having run nothing.
#pragma once

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>

namespace kvctl::testing {

class SelectedCases : public doctest::IReporter {
 public:
  explicit SelectedCases(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    selected.store(static_cast<int>(stats.numTestCasesPassingFilters));
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}

  static inline std::atomic<int> selected{-1};
};

REGISTER_LISTENER("selected_cases", 1, SelectedCases);

}  // namespace kvctl::testing

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;  // --list-test-cases and the like
  if (kvctl::testing::SelectedCases::selected.load() == 0) {
    std::fprintf(stderr, "no test case matched the filter: nothing ran, which is not a pass\n");
    return 1;
  }
  return result;
}
