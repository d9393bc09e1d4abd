#include "pel/state/keyed_map.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

using namespace pel;
using state::key_group_range;

namespace {

struct counter {
  std::int64_t n = 0;
  double sum = 0;
};

void put_counter(core::state_writer& w, const counter& c) {
  w.put(c.n);
  w.put(c.sum);
}
counter get_counter(core::state_reader& r) {
  counter c;
  c.n = r.get<std::int64_t>();
  c.sum = r.get<double>();
  return c;
}

std::string symbol(int i) { return "SYM" + std::to_string(i); }

/// Fills a map with `keys` string keys, key i having n = i and sum = i / 2.
void fill(state::keyed_map<counter>& m, int keys) {
  const int col = 0;
  for (int i = 0; i < keys; ++i) {
    core::value v = symbol(i);
    auto h = state::hash_key(&v, &col, 1);
    bool inserted = false;
    auto idx = m.find_or_insert(&v, &col, 1, h, inserted);
    REQUIRE(inserted);
    m.at(idx) = counter{i, i / 2.0};
  }
}

std::map<std::string, std::int64_t> contents(state::keyed_map<counter>& m) {
  std::map<std::string, std::int64_t> out;
  m.for_each([&](auto, const state::key& k, counter& c) {
    out[std::get<std::string>(k[0])] = c.n;
  });
  return out;
}

} // namespace

TEST_CASE("key group ranges follow Flink's formula and cover every group once", "[state]") {
  CHECK(state::key_group_range_of(0, 1, 128) == key_group_range{0, 128});
  CHECK(state::key_group_range_of(0, 2, 128) == key_group_range{0, 64});
  CHECK(state::key_group_range_of(1, 2, 128) == key_group_range{64, 128});
  CHECK(state::key_group_range_of(0, 3, 128) == key_group_range{0, 43});
  CHECK(state::key_group_range_of(1, 3, 128) == key_group_range{43, 86});
  CHECK(state::key_group_range_of(2, 3, 128) == key_group_range{86, 128});
  for (std::uint32_t maxp : {1u, 7u, 128u, 1000u}) {
    for (std::uint32_t p = 1; p <= std::min(maxp, 17u); ++p) {
      std::uint32_t next = 0;
      for (std::uint32_t i = 0; i < p; ++i) {
        auto r = state::key_group_range_of(i, p, maxp);
        REQUIRE(r.begin == next);
        REQUIRE(r.end > r.begin);
        for (auto kg = r.begin; kg < r.end; ++kg) REQUIRE(state::instance_of(kg, p, maxp) == i);
        next = r.end;
      }
      REQUIRE(next == maxp);
    }
  }
}

TEST_CASE("composite keys hash with hash_combine in key order", "[state]") {
  core::value row[3] = {std::string("a"), std::int64_t{7}, 2.5};
  int cols[2] = {0, 1};
  int swapped[2] = {1, 0};
  auto h = state::hash_key(row, cols, 2);
  CHECK(h == core::hash_combine(core::stable_hash(row[0]), core::stable_hash(row[1])));
  CHECK(h != state::hash_key(row, swapped, 2));
  state::key k(row, cols, 2);
  CHECK(k.hash() == h);
  CHECK(k.equals(row, cols, 2));
  CHECK_FALSE(k.equals(row, swapped, 2));
  // The same hash as the single value for one-column keys.
  int one = 2;
  CHECK(state::hash_key(row, &one, 1) == core::stable_hash(row[2]));
}

TEST_CASE("same_bytes compares every length and every position", "[state]") {
  const std::string a = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string b = a.substr(0, n);
    CHECK(state::same_bytes(a.data(), b.data(), n));
    for (std::size_t i = 0; i < n; ++i) {
      std::string c = b;
      c[i] = '!';
      CHECK_FALSE(state::same_bytes(a.data(), c.data(), n));
    }
  }
}

TEST_CASE("one-string keys compare equal only to the same string", "[state]") {
  const int col = 0;
  // Short (inline) and long (heap) strings, and strings that share a prefix or a suffix.
  const std::vector<std::string> words = {"",         "A",        "AB",       "ABC",
                                          "ABCD",     "ABCDE",    "SYM01234", "SYM01235",
                                          "XSYM0123", "SYM012345", "SYM0123456789ABC",
                                          "SYM0123456789ABD", "a key far longer than sixteen"};
  for (const auto& w : words) {
    core::value v = w;
    state::key k(&v, &col, 1);
    for (const auto& o : words) {
      core::value u = o;
      CHECK(k.equals(&u, &col, 1) == (w == o));
    }
    core::value number = std::int64_t{7};
    CHECK_FALSE(k.equals(&number, &col, 1));
  }
}

TEST_CASE("keyed_map finds every key among many that share home cells", "[state]") {
  // 20,000 keys through several table growths, half erased, then all looked up again.
  state::keyed_map<counter> m(128);
  const int col = 0;
  const int keys = 20000;
  fill(m, keys);
  std::vector<state::keyed_map<counter>::index> idx(keys);
  for (int i = 0; i < keys; ++i) {
    core::value v = symbol(i);
    idx[i] = m.find(&v, &col, 1, state::hash_key(&v, &col, 1));
    REQUIRE(idx[i] != m.npos);
    REQUIRE(m.at(idx[i]).n == i);
    REQUIRE(m.peek(state::hash_key(&v, &col, 1)) != nullptr);
  }
  for (int i = 0; i < keys; i += 2) m.erase(idx[i]);
  CHECK(m.size() == keys / 2);
  for (int i = 0; i < keys; ++i) {
    core::value v = symbol(i);
    auto f = m.find(&v, &col, 1, state::hash_key(&v, &col, 1));
    if (i % 2 == 0) {
      CHECK(f == m.npos);
    } else {
      REQUIRE(f != m.npos);
      CHECK(m.at(f).n == i);
    }
  }
}

TEST_CASE("keyed_map finds, inserts and erases without losing neighbours", "[state]") {
  state::keyed_map<counter> m(128);
  std::mt19937_64 rng(42);
  std::map<std::int64_t, std::int64_t> model;
  const int col = 0;
  for (int step = 0; step < 20000; ++step) {
    core::value v = std::int64_t(rng() % 500);
    auto h = state::hash_key(&v, &col, 1);
    auto k = std::get<std::int64_t>(v);
    if (rng() % 3 == 0) {
      auto i = m.find(&v, &col, 1, h);
      REQUIRE((i != m.npos) == (model.count(k) == 1));
      if (i != m.npos) {
        m.erase(i);
        model.erase(k);
      }
    } else {
      bool inserted;
      auto i = m.find_or_insert(&v, &col, 1, h, inserted);
      REQUIRE(inserted == (model.count(k) == 0));
      m.at(i).n += 1;
      model[k] += 1;
    }
  }
  REQUIRE(m.size() == model.size());
  std::size_t seen = 0;
  m.for_each([&](auto, const state::key& key, counter& c) {
    REQUIRE(model.at(std::get<std::int64_t>(key[0])) == c.n);
    ++seen;
  });
  REQUIRE(seen == model.size());
}

TEST_CASE("erase bumps the generation so stale indices are detected", "[state]") {
  state::keyed_map<counter> m;
  const int col = 0;
  core::value a = std::string("a"), b = std::string("b");
  bool ins;
  auto i = m.find_or_insert(&a, &col, 1, state::hash_key(&a, &col, 1), ins);
  auto gen = m.generation(i);
  REQUIRE(m.valid(i, gen));
  m.erase(i);
  REQUIRE_FALSE(m.valid(i, gen));
  auto j = m.find_or_insert(&b, &col, 1, state::hash_key(&b, &col, 1), ins);
  REQUIRE(j == i);  // the slot is reused ...
  REQUIRE_FALSE(m.valid(j, gen));  // ... under a new generation
}

TEST_CASE("erase_if erases while iterating and keeps the other entries findable", "[state]") {
  state::keyed_map<counter> m(16);
  const int col = 0;
  for (std::int64_t k = 0; k < 3000; ++k) {
    core::value v = k;
    bool ins;
    m.at(m.find_or_insert(&v, &col, 1, state::hash_key(&v, &col, 1), ins)).n = k;
  }
  std::size_t calls = 0;
  auto erased = m.erase_if([&](auto, const state::key& key, counter& c) {
    ++calls;
    REQUIRE(std::get<std::int64_t>(key[0]) == c.n);
    return c.n % 3 == 0;
  });
  REQUIRE(calls == 3000);
  REQUIRE(erased == 1000);
  REQUIRE(m.size() == 2000);
  for (std::int64_t k = 0; k < 3000; ++k) {
    core::value v = k;
    auto i = m.find(&v, &col, 1, state::hash_key(&v, &col, 1));
    REQUIRE((i == m.npos) == (k % 3 == 0));
    if (i != m.npos) REQUIRE(m.at(i).n == k);
  }
  // Erasing everything leaves an empty map that takes new keys.
  REQUIRE(m.erase_if([](auto, const state::key&, counter&) { return true; }) == 2000);
  REQUIRE(m.empty());
  core::value v = std::int64_t(7);
  bool ins;
  m.find_or_insert(&v, &col, 1, state::hash_key(&v, &col, 1), ins);
  REQUIRE(ins);
  REQUIRE(m.size() == 1);
}

TEST_CASE("snapshot and restore round-trip every key", "[state]") {
  state::keyed_map<counter> m(128);
  fill(m, 1000);
  core::state_writer w;
  m.snapshot(w, {0, 128}, put_counter);

  state::keyed_map<counter> back(128);
  core::state_reader r(w.bytes());
  back.restore(r, {0, 128}, get_counter);
  REQUIRE(r.at_end());
  REQUIRE(back.size() == 1000);
  REQUIRE(contents(back) == contents(m));
  // Lookups work on the restored map.
  const int col = 0;
  core::value v = symbol(77);
  auto i = back.find(&v, &col, 1, state::hash_key(&v, &col, 1));
  REQUIRE(i != back.npos);
  CHECK(back.at(i).sum == 38.5);
}

TEST_CASE("restore loads only the key groups in its range (rescaling 2 -> 3)", "[state]") {
  const std::uint32_t maxp = 128;
  // Two old instances, each holding the keys of its own key groups.
  state::keyed_map<counter> all(maxp);
  fill(all, 3000);
  std::string snaps[2];
  for (std::uint32_t i = 0; i < 2; ++i) {
    core::state_writer w;
    all.snapshot(w, state::key_group_range_of(i, 2, maxp), put_counter);
    snaps[i] = w.take();
  }
  auto expected = contents(all);
  std::map<std::string, std::int64_t> merged;
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto range = state::key_group_range_of(i, 3, maxp);
    state::keyed_map<counter> part(maxp);
    for (auto& s : snaps) {
      core::state_reader r(s);
      part.restore(r, range, get_counter);
    }
    part.for_each([&](auto idx, const state::key& k, counter&) {
      REQUIRE(range.contains(part.group_of(idx)));
      REQUIRE(state::key_group_of(k.hash(), maxp) == part.group_of(idx));
    });
    total += part.size();
    auto c = contents(part);
    merged.insert(c.begin(), c.end());
  }
  REQUIRE(total == 3000);
  REQUIRE(merged == expected);
}

TEST_CASE("a corrupt snapshot is rejected", "[state]") {
  state::keyed_map<counter> m;
  fill(m, 10);
  core::state_writer w;
  m.snapshot(w, {0, 128}, put_counter);
  std::string bytes = w.take();
  state::keyed_map<counter> back;
  core::state_reader bad(std::string_view(bytes).substr(0, bytes.size() - 3));
  REQUIRE_THROWS(back.restore(bad, {0, 128}, get_counter));
  std::string wrong = bytes;
  wrong[0] ^= 0x55;
  core::state_reader bad2(wrong);
  REQUIRE_THROWS_WITH(back.restore(bad2, {0, 128}, get_counter),
                      "keyed state snapshot: bad section header");
}
