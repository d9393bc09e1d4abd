#pragma once
/// \file
/// The interface of a sink connector. Sinks know nothing of actors.

#include "pel/core/batch.hpp"
#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"

#include <cstdint>
#include <memory>

namespace pel::core {

/// A sink instance. The runtime calls it from one thread at a time.
class sink_base {
public:
  virtual ~sink_base() = default;

  /// Called once with the schema of the rows it will receive.
  virtual void open(const operator_context& ctx, const schema_ptr& input) = 0;

  /// Writes the rows of `in`. May buffer. Throwing fails the pipeline.
  virtual void write(const batch& in) = 0;

  /// Make everything written so far durable (flush buffers, wait for delivery reports).
  /// Called on checkpoint barriers and before `close`. Throw when delivery failed.
  virtual void flush() {}

  /// Called after the final `flush` at end of stream or shutdown.
  virtual void close() {}

  /// Count of rows acknowledged as delivered (for status and tests).
  virtual std::uint64_t delivered() const { return 0; }
};

using sink_ptr = std::unique_ptr<sink_base>;

} // namespace pel::core
