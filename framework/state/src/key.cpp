#include "pel/state/key.hpp"

#include <algorithm>
#include <string>

namespace pel::state {

key_group_range key_group_range_of(std::uint32_t instance, std::uint32_t parallelism,
                                   std::uint32_t max_parallelism) noexcept {
  const std::uint64_t p = parallelism, m = max_parallelism, i = instance;
  key_group_range r;
  r.begin = static_cast<key_group>((i * m + p - 1) / p);
  r.end = static_cast<key_group>(((i + 1) * m - 1) / p + 1);
  return r;
}

bool same_key_value(const core::value& a, const core::value& b) noexcept {
  if (a.index() != b.index()) return false;
  switch (core::type_of(a)) {
    case core::value_type::null: return true;
    case core::value_type::boolean: return std::get<bool>(a) == std::get<bool>(b);
    case core::value_type::integer: return std::get<std::int64_t>(a) == std::get<std::int64_t>(b);
    case core::value_type::number: {
      // Bitwise equality would split -0.0 and 0.0; numeric equality would make NaN a new key
      // on every record. Equal numbers, or both NaN, are the same key.
      double x = std::get<double>(a), y = std::get<double>(b);
      return x == y || (x != x && y != y);
    }
    case core::value_type::string: return std::get<std::string>(a) == std::get<std::string>(b);
  }
  return false;
}

key::key(const core::value* row, const int* cols, std::size_t n)
  : size_(static_cast<std::uint32_t>(n)) {
  if (n == 0) return;
  first_ = row[cols[0]];
  if (n > 1) {
    rest_ = std::make_unique<std::vector<core::value>>();
    rest_->reserve(n - 1);
    for (std::size_t i = 1; i < n; ++i) rest_->push_back(row[cols[i]]);
  }
}

std::uint64_t key::hash() const noexcept {
  if (size_ == 0) return 0;
  std::uint64_t h = core::stable_hash(first_);
  for (std::size_t i = 1; i < size_; ++i) h = core::hash_combine(h, core::stable_hash((*this)[i]));
  return h;
}

bool key::equals_general(const core::value* row, const int* cols,
                         std::size_t n) const noexcept {
  if (n != size_) return false;
  if (n == 0) return true;
  if (!same_key_value(first_, row[cols[0]])) return false;
  for (std::size_t i = 1; i < n; ++i)
    if (!same_key_value((*rest_)[i - 1], row[cols[i]])) return false;
  return true;
}

bool key::operator==(const key& o) const noexcept {
  if (size_ != o.size_) return false;
  for (std::size_t i = 0; i < size_; ++i)
    if (!same_key_value((*this)[i], o[i])) return false;
  return true;
}

namespace {
std::size_t value_heap_bytes(const core::value& v) noexcept {
  if (auto s = std::get_if<std::string>(&v)) {
    // libstdc++ keeps up to 15 chars inline.
    return s->capacity() > 15 ? s->capacity() + 1 : 0;
  }
  return 0;
}
} // namespace

std::size_t key::heap_bytes() const noexcept {
  std::size_t n = value_heap_bytes(first_);
  if (rest_) {
    n += sizeof(*rest_) + rest_->capacity() * sizeof(core::value);
    for (const auto& v : *rest_) n += value_heap_bytes(v);
  }
  return n;
}

void key::copy_to(core::value* out) const {
  for (std::size_t i = 0; i < size_; ++i) out[i] = (*this)[i];
}

void key::write(core::state_writer& w) const {
  w.put<std::uint32_t>(size_);
  for (std::size_t i = 0; i < size_; ++i) w.put_value((*this)[i]);
}

key key::read(core::state_reader& r) {
  key k;
  k.size_ = r.get<std::uint32_t>();
  if (k.size_ == 0) return k;
  k.first_ = r.get_value();
  if (k.size_ > 1) {
    k.rest_ = std::make_unique<std::vector<core::value>>();
    k.rest_->reserve(std::min<std::uint32_t>(k.size_ - 1, 64));
    for (std::uint32_t i = 1; i < k.size_; ++i) k.rest_->push_back(r.get_value());
  }
  return k;
}

} // namespace pel::state
