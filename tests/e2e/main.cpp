#include "tests/support/doctest_main.h"
