//! Memory per queued task: every worker blocked on a gate, then `n` empty tasks queued behind
//! them; the heap bytes requested (exact, see [`crate::heap`]) and the RSS growth, per task.

use super::throughput::count;
use crate::latch::Latch;
use crate::peers::{Kind, Pool, TIMEOUT};
use crate::{heap, procfs, Config, Row};

static STARTED: Latch = Latch::new();
static GATE: Latch = Latch::new();
static DONE: Latch = Latch::new();

fn empty() {
    DONE.count_down();
}

/// The ways of queueing a task that this row compares.
#[derive(Clone, Copy)]
enum How {
    Spawn(Kind),
    /// `pool_core::ThreadPool::submit`, the handle kept (its slot in a preallocated `Vec` is
    /// not counted).
    OursWithHandle,
}

impl How {
    fn kind(self) -> Kind {
        match self {
            How::Spawn(kind) => kind,
            How::OursWithHandle => Kind::Ours,
        }
    }

    fn name(self) -> &'static str {
        match self {
            How::Spawn(kind) => kind.name(),
            How::OursWithHandle => "pool-core submit (handle kept)",
        }
    }
}

/// One round; (heap B/task, RSS B/task).
fn round(how: How, threads: usize, n: usize) -> (f64, Option<f64>) {
    let kind = how.kind();
    let pool = Pool::build(kind, threads, &format!("mem-{}", kind.tag()));
    GATE.reset(1);
    STARTED.reset(threads);
    for _ in 0..threads {
        pool.spawn(|| {
            STARTED.count_down();
            // Generous, and never hit in a healthy run: the gate opens right after measuring.
            GATE.wait(TIMEOUT);
        });
    }
    STARTED.wait_or_panic(TIMEOUT, "blocking every worker");
    let mut handles = Vec::with_capacity(match how {
        How::OursWithHandle => n,
        How::Spawn(_) => 0,
    });
    DONE.reset(n);
    procfs::trim_heap();
    let rss_before = procfs::rss_bytes();
    let (heap_bytes, ()) = heap::measure(|| match how {
        How::Spawn(_) => (0..n).for_each(|_| pool.spawn(empty)),
        How::OursWithHandle => (0..n).for_each(|_| handles.push(pool.submit(empty))),
    });
    let rss_after = procfs::rss_bytes();
    GATE.count_down();
    DONE.wait_or_panic(TIMEOUT, "draining the queued tasks");
    drop(handles);
    pool.close();
    let rss = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / n as f64),
        _ => None,
    };
    (heap_bytes as f64 / n as f64, rss)
}

/// The heap and RSS rows.
pub(crate) fn rows(config: &Config) -> Vec<Row> {
    let n = config.pick(1_000_000, 100_000);
    let rounds = config.rounds.min(3);
    let mut hows: Vec<How> = vec![How::Spawn(Kind::Ours), How::OursWithHandle];
    hows.extend(
        Kind::ALL
            .into_iter()
            .filter(|k| !k.is_ours())
            .map(How::Spawn),
    );
    let mut heap_values = vec![Vec::new(); hows.len()];
    let mut rss_values = vec![Vec::new(); hows.len()];
    for _ in 0..rounds {
        for (i, how) in hows.iter().enumerate() {
            let (heap, rss) = round(*how, config.cores, n);
            heap_values[i].push(heap);
            rss_values[i].extend(rss);
        }
    }
    let handle_size = std::mem::size_of::<pool_core::TaskHandle<()>>();
    let mut heap_row = Row::new(
        format!("memory per queued empty task, heap ({} queued)", count(n)),
        "B/task",
        false,
    )
    .with_note(format!(
        "net bytes requested from the allocator while queueing behind blocked workers; \
         the handle itself ({handle_size} B) is not counted; target: spawn <= best peer, \
         with handle <= 160 B"
    ));
    let mut rss_row = Row::new(
        format!("memory per queued empty task, RSS ({} queued)", count(n)),
        "B/task",
        false,
    )
    .with_note(
        "resident-set growth while queueing, after malloc_trim(0) (includes the allocator's \
         per-chunk overhead; may still under-report where freed memory is reused)",
    );
    for (i, how) in hows.iter().enumerate() {
        let ours = how.kind().is_ours();
        heap_row.push(how.name(), ours, &heap_values[i]);
        rss_row.push(how.name(), ours, &rss_values[i]);
    }
    vec![heap_row, rss_row]
}
