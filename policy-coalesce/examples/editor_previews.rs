//! An editor typing simulation: every keystroke asks for a preview render, an auto-save and a
//! search; the coalescer runs only the work whose result still matters.
//!
//! - renders are coalesced per document (latest text wins, High priority);
//! - auto-saves are coalesced per document (Low priority);
//! - the search is in `Replace` mode: a new query asks the running search to stop.
//!
//! Run with `cargo run -p policy-coalesce --example editor_previews`.

use policy_coalesce::{Coalescer, Mode, SubmitOptions};
use pool_core::{Priority, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Work {
    Render(usize),
    Save(usize),
    Search,
}

/// Pretends to do `millis` of work, stopping early when asked to.
fn busy(millis: u64, stop: impl Fn() -> bool) -> bool {
    for _ in 0..millis {
        if stop() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .threads(2)
        .thread_name("editor")
        .build()?;
    let editor = Coalescer::<Work, String, _>::builder(pool).build()?;
    let executed = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let mut submitted = [0usize; 3];

    let documents = [
        "fn main() { println!(\"hello\"); }",
        "# Notes: coalescing saves work",
    ];
    let mut texts = vec![String::new(); documents.len()];
    let mut last = Vec::new();
    let longest = documents.iter().map(|d| d.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (doc, full) in documents.iter().enumerate() {
            let Some(ch) = full.chars().nth(i) else {
                continue;
            };
            texts[doc].push(ch);
            let text = texts[doc].clone();

            let (t, done) = (text.clone(), executed.clone());
            let render = SubmitOptions::new().priority(Priority::High);
            let handle = editor
                .submit_with(Work::Render(doc), render, move || {
                    done[0].fetch_add(1, Ordering::Relaxed);
                    busy(3, || false);
                    format!("<pre>{t}</pre>")
                })
                .map_err(|_| "pool shut down")?;
            submitted[0] += 1;
            if i + 1 == full.len() {
                last.push((doc, handle));
            }

            let (t, done) = (text.clone(), executed.clone());
            let save = SubmitOptions::new().priority(Priority::Low);
            drop(editor.submit_with(Work::Save(doc), save, move || {
                done[1].fetch_add(1, Ordering::Relaxed);
                busy(5, || false);
                format!("saved {} bytes", t.len())
            }));
            submitted[1] += 1;

            let done = executed.clone();
            let search = SubmitOptions::new().mode(Mode::Replace);
            drop(
                editor.submit_cancellable_with(Work::Search, search, move |flag| {
                    done[2].fetch_add(1, Ordering::Relaxed);
                    let finished = busy(8, || flag.is_cancelled());
                    format!(
                        "search for {text:?}: {}",
                        if finished { "done" } else { "stopped" }
                    )
                }),
            );
            submitted[2] += 1;

            std::thread::sleep(Duration::from_millis(1)); // the next keystroke
        }
    }

    for (doc, handle) in last {
        let preview = handle.join_timeout(Duration::from_secs(30))?;
        println!("final preview of document {doc}: {preview}");
    }
    editor.executor().wait_idle(Duration::from_secs(30));

    println!();
    println!(
        "{:<10} {:>11} {:>10} {:>11}",
        "work", "submissions", "executions", "work saved"
    );
    let mut total = (0, 0);
    for (kind, name) in ["render", "auto-save", "search"].iter().enumerate() {
        let runs = executed[kind].load(Ordering::Relaxed);
        let saved = 100.0 * (1.0 - runs as f64 / submitted[kind] as f64);
        println!(
            "{name:<10} {:>11} {runs:>10} {saved:>10.0}%",
            submitted[kind]
        );
        total = (total.0 + submitted[kind], total.1 + runs);
    }
    println!(
        "{:<10} {:>11} {:>10}   (a plain pool would run all {} submissions)",
        "total", total.0, total.1, total.0
    );
    let stats = editor.stats();
    println!();
    println!("coalescer stats: {stats}");
    println!(
        "searches asked to stop by a newer query: {}",
        stats.replaced
    );
    assert!(stats.is_balanced());
    Ok(())
}
