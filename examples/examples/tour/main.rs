//! The tour: realistic scenarios through every crate of the workspace, printing what each did.
//!
//! Run it with `cargo run --release -p examples --example tour`.

mod adaptive;
mod coalesce;
mod core_pool;
mod dag;
mod priority;

fn main() {
    // Task panics are part of the tour (panic isolation); print them as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        println!(
            "  [panic hook] {} panicked: {}",
            thread.name().unwrap_or("?"),
            payload(info)
        );
    }));
    println!("worker-pool tour on {} cores", cores());
    core_pool::run();
    priority::run();
    coalesce::run();
    dag::run();
    adaptive::run();
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints a section heading.
pub fn section(title: &str) {
    println!("\n== {title}");
}

fn payload(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string payload".to_string()
    }
}
