#include "pel/operators/register.hpp"

namespace pel::operators {

void register_builtin_operators(spec::registry& reg) {
#ifdef PEL_HAVE_STATELESS
  register_stateless_operators(reg);
#endif
#ifdef PEL_HAVE_WINDOWS
  register_window_operators(reg);
#endif
#ifdef PEL_HAVE_STATEFUL
  register_stateful_operators(reg);
#endif
  (void)reg;
}

} // namespace pel::operators
