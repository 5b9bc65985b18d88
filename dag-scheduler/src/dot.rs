//! The graph in Graphviz DOT, for `Graph::to_dot` and `Report::to_dot` (which colours it).

use std::fmt::Write as _;

use crate::inner::GraphInner;

/// DOT text; `fill(i)` gives a node's fill colour and outcome label, if any.
pub(crate) fn to_dot(
    inner: &GraphInner,
    fill: impl Fn(usize) -> Option<(&'static str, &'static str)>,
) -> String {
    let mut out = String::from("digraph dag {\n  rankdir=LR;\n  node [shape=box];\n");
    let critical = inner.critical();
    for (i, name) in inner.names().enumerate() {
        let name = dot_escape(name);
        let bold = critical.contains(i);
        let _ = match (fill(i), bold) {
            (None, false) => writeln!(out, "  \"{name}\";"),
            (None, true) => writeln!(out, "  \"{name}\" [style=bold];"),
            (Some((color, label)), bold) => writeln!(
                out,
                "  \"{name}\" [style=\"{}filled\", fillcolor={color}, label=\"{name}\\n{label}\"];",
                if bold { "bold," } else { "" }
            ),
        };
    }
    for (i, name) in inner.names().enumerate() {
        for &p in inner.preds_of(i) {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                dot_escape(inner.name(p as usize)),
                dot_escape(name)
            );
        }
    }
    out.push_str("}\n");
    out
}

pub(crate) fn dot_escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}
