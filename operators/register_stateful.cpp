#include "pel/operators/register.hpp"

#include "change_detect.hpp"
#include "dedupe.hpp"
#include "ema.hpp"
#include "interval_join.hpp"
#include "lookup_join.hpp"
#include "rolling.hpp"
#include "throttle.hpp"
#include "top_k.hpp"
#include "window_join.hpp"
#include "zscore.hpp"

namespace pel::operators {

void register_stateful_operators(spec::registry& reg) {
  reg.add_operator(rolling_schema(), make_rolling);
  reg.add_operator(ema_schema(), make_ema);
  reg.add_operator(dedupe_schema(), make_dedupe);
  reg.add_operator(throttle_schema(), make_throttle);
  reg.add_operator(top_k_schema(), make_top_k);
  reg.add_operator(zscore_schema(), make_zscore);
  reg.add_operator(change_detect_schema(), make_change_detect);
  reg.add_operator(window_join_schema(), make_window_join);
  reg.add_operator(interval_join_schema(), make_interval_join);
  reg.add_operator(lookup_join_schema(), make_lookup_join);
}

} // namespace pel::operators
