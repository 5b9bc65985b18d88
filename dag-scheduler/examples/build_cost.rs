//! What building a graph costs: nanoseconds and heap bytes per node to add the nodes (named, with
//! `node(..).after(..)` as a user writes it) and `build()`, and heap bytes per node of one run's
//! state, for a 1M-node chain, a 1000x1000 wavefront and a random DAG of 1M nodes.
//!
//! ```text
//! cargo run --release -p dag-scheduler --example build_cost [rounds]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dag_scheduler::{Graph, NodeKey, RunOptions};
use pool_core::InlineExecutor;

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Predecessor lists; every predecessor has a smaller index.
type Shape = Vec<Vec<u32>>;

fn chain(n: usize) -> Shape {
    (0..n as u32)
        .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
        .collect()
}

fn wavefront(side: usize) -> Shape {
    let at = |r: usize, c: usize| (r * side + c) as u32;
    let mut preds = Vec::with_capacity(side * side);
    for r in 0..side {
        for c in 0..side {
            let mut p = Vec::new();
            if r > 0 {
                p.push(at(r - 1, c));
            }
            if c > 0 {
                p.push(at(r, c - 1));
            }
            preds.push(p);
        }
    }
    preds
}

/// Each node depends on 0-3 nodes among the previous 64 (the `benches` crate's shape).
fn random_dag(n: usize, seed: u64) -> Shape {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let k = (next() % 4) as usize;
            let mut p: Vec<u32> = (0..k.min(i))
                .map(|_| (i - 1 - (next() as usize % i.min(64))) as u32)
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        })
        .collect()
}

fn build(shape: &Shape) -> Graph {
    let mut builder = Graph::builder();
    let mut keys: Vec<NodeKey<()>> = Vec::with_capacity(shape.len());
    for (i, preds) in shape.iter().enumerate() {
        let mut node = builder.node(format!("n{i}"), |_| ());
        for &p in preds {
            node = node.after(keys[p as usize]);
        }
        keys.push(node.key());
    }
    builder.build().expect("acyclic")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    // `build` only builds (for instruction counts); `none` only makes the shapes (the baseline).
    let only = std::env::args().nth(2).unwrap_or_default();
    let shapes = [
        ("1M chain", chain(1_000_000)),
        ("1000x1000 wavefront", wavefront(1000)),
        ("random 1M", random_dag(1_000_000, 7)),
    ];
    println!("shape                 build ns/node (median of {rounds})  graph B/node  run B/node (untimed, timed)");
    for (name, shape) in &shapes {
        let n = shape.len() as f64;
        let mut times = Vec::new();
        let mut graph_bytes = 0;
        let mut run_bytes = (0, 0);
        for _ in 0..rounds {
            if only == "none" {
                continue;
            }
            let before = LIVE.load(Ordering::Relaxed);
            let t = Instant::now();
            let graph = build(shape);
            times.push(t.elapsed().as_nanos() as f64 / n);
            graph_bytes = LIVE.load(Ordering::Relaxed) - before;
            let with_graph = LIVE.load(Ordering::Relaxed);
            if only == "build" {
                continue;
            }
            for (timing, bytes) in [(false, &mut run_bytes.0), (true, &mut run_bytes.1)] {
                let report = graph
                    .run_with(&InlineExecutor, RunOptions::new().timing(timing))
                    .expect("no marks");
                assert!(report.is_success());
                *bytes = LIVE.load(Ordering::Relaxed) - with_graph;
                drop(report);
            }
            drop(graph);
        }
        if times.is_empty() {
            continue;
        }
        println!(
            "{name:<22}{:>10.0}{:>36.1}{:>12.1} {:>6.1}",
            median(times),
            graph_bytes as f64 / n,
            run_bytes.0 as f64 / n,
            run_bytes.1 as f64 / n,
        );
    }
}
