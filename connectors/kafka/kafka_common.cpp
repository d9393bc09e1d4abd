#include "kafka_common.hpp"

#include <charconv>

namespace pel::connectors::kafka_detail {

bool try_set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
             std::string& error) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK)
    return true;
  error = err;
  return false;
}

void set_or_fail(rd_kafka_conf_t* conf, const spec::config& cfg, std::string_view at_key,
                 const std::string& key, const std::string& value) {
  std::string error;
  if (!try_set(conf, key, value, error))
    cfg.fail(at_key, "librdkafka rejected " + key + "=" + value + ": " + error);
}

void apply_passthrough(rd_kafka_conf_t* conf, const spec::config& cfg) {
  const auto pairs = cfg.get_string_map("rdkafka");
  if (pairs.empty()) return;
  // Locate each entry at its own key: the map node's entries carry their marks.
  const spec::node* map = nullptr;
  if (cfg.raw() && cfg.raw()->is_map())
    if (auto e = cfg.raw()->find("rdkafka")) map = e->value.get();
  for (const auto& [key, value] : pairs) {
    std::string error;
    if (try_set(conf, key, value, error)) continue;
    spec::mark at = cfg.mark_of("rdkafka");
    if (map != nullptr)
      if (auto e = map->find(key)) at = e->value->at;
    throw spec::config_error(at, cfg.path_of("rdkafka") + "." + key,
                             "librdkafka rejected '" + key + "': " + error +
                                 " (see librdkafka's CONFIGURATION.md for the valid properties)");
  }
}

bool passthrough_sets(const spec::config& cfg, std::string_view key) {
  if (!cfg.raw() || !cfg.raw()->is_map()) return false;
  auto e = cfg.raw()->find("rdkafka");
  return e != nullptr && e->value && e->value->is_map() && e->value->find(key) != nullptr;
}

std::string position_text(std::string_view topic, std::int32_t partition, std::int64_t offset) {
  std::string s(topic);
  s += '/';
  s += std::to_string(partition);
  s += '@';
  s += std::to_string(offset);
  return s;
}

bool parse_topic_partition_count(std::string_view text, std::string& name, int& count) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  int n = 0;
  auto digits = text.substr(colon + 1);
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || n <= 0) return false;
  name = std::string(text.substr(0, colon));
  count = n;
  return true;
}

}  // namespace pel::connectors::kafka_detail
