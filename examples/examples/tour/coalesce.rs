//! policy-coalesce: a user types 60 characters; renders, auto-saves and searches are merged so
//! only the newest text is worked on.

use policy_coalesce::{Coalescer, Mode, SubmitOptions};
use pool_core::ThreadPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::section;

pub fn run() {
    section("policy-coalesce: typing 60 characters into an editor");
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(2)
            .thread_name("editor")
            .build()
            .unwrap(),
    );
    let renders = Coalescer::builder(pool.clone()).build().unwrap();
    let saves = Coalescer::builder(pool.clone())
        .mode(Mode::Keep)
        .build()
        .unwrap();
    let searches = Coalescer::builder(pool.clone()).build().unwrap();

    let text = "the quick brown fox jumps over the lazy dog, then naps again.";
    let mut typed = String::new();
    let mut last_render = None;
    let mut last_search = None;
    for (i, ch) in text.chars().enumerate() {
        typed.push(ch);
        let snapshot = typed.clone();
        // Every keystroke asks for a preview render of the newest text (~2 ms of work).
        last_render = Some(
            renders
                .submit("preview", move || {
                    spin(Duration::from_millis(2));
                    snapshot.len()
                })
                .unwrap(),
        );
        // Every 10th keystroke asks to auto-save its document; a save in flight is kept.
        if i % 10 == 9 {
            let doc = if i % 20 == 19 { "notes.md" } else { "draft.md" };
            saves
                .submit(doc, || spin(Duration::from_millis(3)))
                .unwrap();
        }
        // The search box follows the text: a new query replaces (and stops) the running one.
        let query = typed.clone();
        let replace = SubmitOptions::new().mode(Mode::Replace);
        last_search = Some(
            searches
                .submit_cancellable_with("search", replace, move |stop| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(4) {
                        if stop.is_cancelled() {
                            return None; // a newer query took over
                        }
                        std::hint::spin_loop();
                    }
                    Some(query.len())
                })
                .unwrap(),
        );
        std::thread::sleep(Duration::from_micros(300)); // typing speed
    }
    let rendered = last_render.unwrap().join().unwrap();
    let searched = last_search.unwrap().join().unwrap();
    pool.wait_idle(Duration::from_secs(30));
    println!("  the last preview rendered {rendered} characters; the last search saw {searched:?}");
    for (name, stats) in [
        ("renders", renders.stats()),
        ("auto-saves", saves.stats()),
        ("searches", searches.stats()),
    ] {
        println!(
            "  {name:<10} submitted {:>3}, executed {:>3} ({} merged, {} of them keeping the \
             pending closure; {} running ones told to stop); a plain pool would have run {}",
            stats.submitted,
            stats.executed,
            stats.coalesced,
            stats.kept,
            stats.replaced,
            stats.submitted
        );
    }
    println!(
        "  keys left in the maps: {}",
        renders.stats().keys + saves.stats().keys
    );
}

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}
