#include "stateful_test_support.hpp"
