// The single Catch2 main for every test in this directory.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
