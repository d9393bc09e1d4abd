#include "pel/operators/register.hpp"

#include "filter.hpp"
#include "flat_map.hpp"
#include "map.hpp"
#include "union.hpp"

namespace pel::operators {

void register_stateless_operators(spec::registry& reg) {
  reg.add_operator(filter_schema(), make_filter);
  reg.add_operator(map_schema(), make_map);
  reg.add_operator(flat_map_schema(), make_flat_map);
  reg.add_operator(union_schema(), make_union);
}

} // namespace pel::operators
