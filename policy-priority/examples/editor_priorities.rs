//! An editor's background work on a one-thread priority pool.
//!
//! The user types a word every 4 ms. Each keystroke asks for a preview render (High,
//! user-visible, 6 ms of work), so previews pile up faster than the worker renders them. Every
//! eighth keystroke an auto-save is due (Low) and the status bar's word count is refreshed (Idle).
//! Strict priority would keep saving and counting waiting until the typing stops; the starvation
//! guard (aging bound 50 ms here) serves them once they are overdue, between two previews. Halfway
//! the user presses Ctrl+S, which raises the pending auto-save to Critical.
//!
//! Run with `cargo run -p policy-priority --example editor_priorities`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use policy_priority::{Aging, PriorityQueue, PrioritySubmit};
use pool_core::{Priority, ThreadPool};

const TEXT: &str = "the quick brown fox jumps over the lazy dog while the editor keeps up \
                    with every keystroke and saves your work and counts your words in the \
                    background without ever making the preview wait";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = PriorityQueue::with_aging(Aging::after(Duration::from_millis(50))?);
    let pool = ThreadPool::builder()
        .threads(1)
        .thread_name("editor-bg")
        .queue_policy(queue.clone())
        .build()?;

    let t0 = Instant::now();
    let (log, events) = mpsc::channel::<(Duration, String)>();
    let say = move |log: &mpsc::Sender<(Duration, String)>, what: String| {
        let _ = log.send((t0.elapsed(), what));
    };
    let mut text = String::new();
    let mut pending_save = None;

    for (key, word) in TEXT.split(' ').enumerate() {
        text.push_str(word);
        text.push(' ');
        let (l, chars) = (log.clone(), text.len());
        pool.submit_at(Priority::High, move || {
            say(&l, format!("preview   #{key:<2} ({chars} chars)"));
            std::thread::sleep(Duration::from_millis(6)); // layout and paint
        })?;

        if key % 8 == 7 {
            let (l, bytes) = (log.clone(), text.len());
            pending_save = Some(pool.submit_at(Priority::Low, move || {
                say(&l, format!("autosave  after #{key:<2} ({bytes} bytes)"));
            })?);
            let (l, words) = (log.clone(), text.split_whitespace().count());
            // Nobody waits for the count: fire-and-forget at Idle, no handle.
            pool.spawn_at(Priority::Idle, move || {
                say(&l, format!("wordcount after #{key:<2} = {words}"));
            })?;
        }
        if key == 20 {
            if let Some(save) = &pending_save {
                let raised = pool.raise_priority(save, Priority::Critical);
                say(
                    &log,
                    format!("ctrl+s    raise the pending autosave: {raised}"),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(4)); // the user types the next word
    }
    say(&log, "typing stopped".to_string());
    drop(log);

    assert!(
        pool.wait_idle(Duration::from_secs(30)),
        "the pool went idle"
    );
    pool.shutdown();

    let mut events: Vec<_> = events.iter().collect();
    events.sort_by_key(|(at, _)| *at);
    println!("what started when (one worker, aging bound 50 ms):");
    for (at, what) in events {
        println!("{:>8.1} ms  {what}", at.as_secs_f64() * 1e3);
    }
    println!("\nper-level statistics:\n{}", queue.stats());
    let stats = pool.stats();
    println!("\npool: {stats:?}");
    assert!(stats.is_balanced());
    Ok(())
}
