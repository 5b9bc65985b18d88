//! The crates' optional `tracing` spans: one per DAG run and per node, one per coalesced
//! execution, each a child of the span that was current where the work was submitted, even though
//! it runs on a pool worker.
//!
//! A service would install `tracing-subscriber`'s fmt layer or an OpenTelemetry exporter; this
//! example installs a small layer that records each span's name and parent, prints the tree, and
//! checks it.
//!
//! Run: `cargo run -p examples --example tracing` (the examples crate turns on the `tracing`
//! features of dag-scheduler and policy-coalesce).

use std::sync::{Arc, Mutex};

use dag_scheduler::Graph;
use policy_coalesce::Coalescer;
use pool_core::ThreadPool;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span's name and its parent's name.
type Edge = (String, Option<String>);

/// Records each span's [`Edge`] as it opens.
#[derive(Clone, Default)]
struct SpanTree(Arc<Mutex<Vec<Edge>>>);

impl<S> Layer<S> for SpanTree
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        let parent = cx
            .span(id)
            .and_then(|span| span.parent().map(|p| p.name().to_string()));
        let name = attrs.metadata().name().to_string();
        self.0.lock().expect("not poisoned").push((name, parent));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tree = SpanTree::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(tree.clone()))?;

    let pool = Arc::new(ThreadPool::new(2)?);
    tracing::info_span!("build").in_scope(|| -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = Graph::builder();
        let fetch = builder.node("fetch", |_| 1).key();
        builder
            .node("compile", move |cx| cx.get(fetch).copied().unwrap_or(0) + 1)
            .after(fetch);
        let report = builder.build()?.run(&*pool);
        println!("dag: {:?}", report.summary());
        Ok(())
    })?;
    tracing::info_span!("editor").in_scope(|| -> Result<(), Box<dyn std::error::Error>> {
        let previews = Coalescer::builder(Arc::clone(&pool)).build()?;
        let handle = previews
            .submit("doc", || "rendered")
            .map_err(|_| "refused")?;
        println!("coalesced: {}", handle.join()?);
        Ok(())
    })?;

    let spans = tree.0.lock().expect("not poisoned").clone();
    for (name, parent) in &spans {
        println!(
            "span {name:<20} parent {}",
            parent.as_deref().unwrap_or("-")
        );
    }
    let parent_of = |name: &str| -> Vec<Option<String>> {
        spans
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .collect()
    };
    assert_eq!(parent_of("dag.run"), [Some("build".to_string())]);
    assert_eq!(parent_of("dag.node"), vec![Some("dag.run".to_string()); 2]);
    assert_eq!(
        parent_of("coalesce.execution"),
        [Some("editor".to_string())]
    );
    pool.shutdown();
    Ok(())
}
