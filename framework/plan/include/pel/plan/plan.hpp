#pragma once
/// \file
/// The physical plan: the validated logical pipeline turned into components with known
/// schemas, parallelism, partitioned edges and fused chains. Built once by `build`, read by
/// `pel lint --explain` and by the runtime, which creates the instances from it.

#include "pel/core/schema.hpp"
#include "pel/expr/expression.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pel::plan {

/// How the rows of an edge are spread over the downstream instances.
enum class partitioning : std::uint8_t {
  forward,    ///< instance i sends to instance i (equal parallelism)
  rebalance,  ///< round robin, one batch at a time
  hash,       ///< hash of the key columns → key group → owning instance
  broadcast,  ///< every instance receives every row
};

/// Name of a partitioning as written in YAML and in `explain`.
const char* to_string(partitioning p) noexcept;

/// An output port of a component.
enum class port_kind : std::uint8_t { main = 0, dead_letter = 1, late = 2 };

/// "" for main, "dead_letter", "late".
const char* to_string(port_kind p) noexcept;

/// Where dead letters go when no component reads a `dead_letter` port.
enum class dead_letter_mode : std::uint8_t { log, drop, sink };

/// One component of the pipeline with everything needed to create its instances.
struct node {
  std::string name;
  std::string type;
  spec::component_kind kind = spec::component_kind::operator_;
  spec::component spec;              ///< the block as written (settings, event time, location)
  std::uint32_t parallelism = 1;  ///< the initial number of instances
  /// The range autoscaling may move `parallelism` in; both equal to `parallelism` when it is
  /// fixed. Only operators whose prototype is `rescalable()` have a range (min < max).
  std::uint32_t parallelism_min = 1, parallelism_max = 1;
  std::vector<core::schema_ptr> input_schemas;  ///< in input order (implicit inputs last)
  core::schema_ptr output_schema;               ///< main port; null for sinks
  std::vector<std::vector<int>> key_columns;    ///< per input; empty when not keyed
  int event_time_column = -1;  ///< sources: position of `event_time.field`, or -1
  /// Sources: `event_time.expression` compiled against the output schema (else not valid).
  /// Exclusive with `event_time_column`.
  expr::expression event_time_expression;
  bool blocking = false;       ///< sources: `source_base::blocking()` (needs its own thread)
  spec::operator_factory make_operator;  ///< set for operators
  spec::source_factory make_source;      ///< set for sources
  spec::sink_factory make_sink;          ///< set for sinks
  std::vector<int> in_edges;   ///< edge indices, by input index
  std::vector<int> out_edges;  ///< edge indices leaving this node (any port)
  int chain = -1;              ///< index of its chain
  int chain_position = -1;     ///< position within the chain
  /// Planning decisions worth telling in `explain` (e.g. why a keyed operator runs in one
  /// phase).
  std::vector<std::string> notes;

  /// True when autoscaling may change this node's parallelism (min < max).
  bool autoscales() const noexcept { return parallelism_min < parallelism_max; }

  /// The schema of a port: main = output, dead_letter = the common dead-letter schema,
  /// late = input 0's schema.
  core::schema_ptr port_schema(port_kind p) const;
  /// True when nothing outside reads this node's dead-letter port.
  bool dead_letter_unread = true;
};

/// A connection from one component's port to one input of another.
struct edge {
  int from = -1;
  port_kind port = port_kind::main;
  int to = -1;
  int input = 0;  ///< the downstream's input index
  partitioning part = partitioning::forward;
  std::vector<int> key_columns;  ///< hash: positions in `schema`
  core::schema_ptr schema;       ///< schema of the rows on this edge
  bool fused = false;            ///< inside a chain: a direct call, no channel
  bool implicit = false;         ///< added by the planner (dead letters to a sink)
};

/// A maximal run of components fused into one actor per instance. `nodes` are in order:
/// the first one receives the chain's inputs, each feeds the next through its main output.
struct chain {
  std::vector<int> nodes;
  std::uint32_t parallelism = 1;
  /// The range of its nodes (all equal: fusion needs equal parallelism and range).
  std::uint32_t parallelism_min = 1, parallelism_max = 1;
};

/// The whole physical plan.
struct physical_plan {
  std::string file;
  spec::pipeline_settings settings;
  spec::node_ptr root;        ///< keeps the config nodes alive
  std::vector<node> nodes;    ///< in topological order
  std::vector<edge> edges;
  std::vector<chain> chains;  ///< in topological order of their first nodes
  dead_letter_mode dead_letters = dead_letter_mode::log;
  int dead_letter_sink = -1;  ///< node index when `dead_letters == sink`

  /// Index of the node called `name`, or -1.
  int find(std::string_view name) const noexcept;
};

/// Builds the physical plan. Creates one prototype of every component with its factory (in
/// topological order, so operators see their input schemas) and gathers every error thrown
/// (`spec::config_error` keeps its location) into one `spec::spec_error`.
/// Fusion rule: an edge is fused when it leaves the upstream's main port, is that port's only
/// consumer, is forward with equal parallelism (and equal autoscaling range), and is the
/// downstream's only input. An edge into or out of a node that autoscales is never forward,
/// so such a node is a chain of its own. Side
/// ports (dead_letter, late) never fuse; they leave the chain through channels and do not
/// prevent the main edge from fusing.
physical_plan build(const spec::pipeline& p, const spec::registry& reg);

/// The outcome of `check_file`: a plan when the file is clean, else every problem found.
struct checked_plan {
  std::optional<physical_plan> plan;  ///< set when `diags` is empty
  spec::diagnostics diags;            ///< sorted; empty when the file is clean
};

/// Validates and plans a pipeline file, reporting the problems of both passes at once: the
/// spec's checks of the file, then (unless the file is unusable as a whole) the planner's
/// checks of every component whose own block passed, such as expressions naming unknown
/// fields. Never throws `spec_error`. This is `pel lint` and the start of `pel run`.
checked_plan check_file(const std::string& path, const spec::registry& reg);

/// Same, from text already in memory; `file` is the name used in messages.
checked_plan check_text(const std::string& text, const std::string& file,
                        const spec::registry& reg);

/// A setting that names a file a component reads or writes, such as the `path` of the
/// `file` source and sink (the caller knows its components; the planner does not).
struct file_setting {
  spec::component_kind kind = spec::component_kind::sink;
  std::string type;  ///< component type, e.g. "file"
  std::string key;   ///< the setting holding the file name, e.g. "path"
  bool writes = true;  ///< false: the component reads the file
};

/// Files that the plans, run side by side in one process, would lose rows on: a file written
/// by two sinks (of one plan or of two), or written by a sink while a source reads it. Names
/// are compared after `${NAME}` expansion, made absolute (against the working directory) and
/// normalised, with symbolic links resolved as far as the path exists. Each conflict is one
/// diagnostic at the later use (plans in order, then file position), whose message gives the
/// earlier use as file:line:column. In the order of the plans; empty when there is none.
spec::diagnostics check_shared_files(const std::vector<const physical_plan*>& plans,
                                     const std::vector<file_setting>& settings);

/// A readable description of the plan for `pel lint --explain`: chains, components with
/// parallelism and schemas, edges with partitioning and key fields, dead-letter routing.
std::string explain(const physical_plan& p);

} // namespace pel::plan
