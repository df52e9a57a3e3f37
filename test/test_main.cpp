// The one doctest runner; meson picks the suite with --test-suite=<name>.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
