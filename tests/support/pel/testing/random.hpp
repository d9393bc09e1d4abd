#pragma once
/// \file
/// A small, fixed-seed random generator for test data: the same seed gives the same data on
/// every machine and standard library (std::mt19937's distributions do not promise that).

#include <cstdint>

namespace pel::testing {

/// Marsaglia's xorshift64. `seed` must not be 0.
class xorshift {
public:
  explicit xorshift(std::uint64_t seed) : x_(seed) {}
  std::uint64_t operator()() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }

private:
  std::uint64_t x_;
};

} // namespace pel::testing
