//! `compare`: runs every workload family against the peer crates in this process and prints the
//! table.
//!
//! ```text
//! cargo run --release -p benches --bin compare -- [--quick] [--only NAME] [--rounds N] [--json FILE]
//! ```
//!
//! `--only NAME` runs the families whose name contains NAME (`core`, `priority`, `coalesce`,
//! `dag`, `adaptive`, `remote`); when NAME names no family, it keeps the workloads whose name
//! contains it. `remote` (about a minute) runs only when named.

use std::process::ExitCode;
use std::time::Instant;

use benches::{render_json, render_table, workloads, Config, Row};

type Family = (&'static str, fn(&Config) -> Vec<Row>);

const FAMILIES: [Family; 6] = [
    ("core", workloads::core::rows),
    ("priority", workloads::priority::rows),
    ("coalesce", workloads::coalesce::rows),
    ("dag", workloads::dag::rows),
    ("adaptive", workloads::adaptive::rows),
    ("remote", workloads::remote::rows),
];

/// Families left out of a run that does not name them with `--only` (too slow for the default).
const ONLY_WHEN_NAMED: [&str; 1] = ["remote"];

const USAGE: &str = "usage: compare [--quick] [--only NAME] [--rounds N] [--json FILE]\n\
     families: core, priority, coalesce, dag, adaptive, remote (only when named)";

struct Args {
    quick: bool,
    only: Option<String>,
    rounds: Option<usize>,
    json: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        quick: false,
        only: None,
        rounds: None,
        json: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--only" => parsed.only = Some(value("--only")?),
            "--json" => parsed.json = Some(value("--json")?),
            "--rounds" => {
                let v = value("--rounds")?;
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => parsed.rounds = Some(n),
                    _ => return Err(format!("--rounds must be a positive integer, not {v:?}")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("compare: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let mut config = Config::new(args.quick, args.rounds);
    let only = args.only.map(|s| s.to_lowercase());
    let by_family = only
        .as_ref()
        .is_some_and(|o| FAMILIES.iter().any(|(name, _)| name.contains(o.as_str())));
    if !by_family {
        config.only.clone_from(&only);
    }
    println!(
        "compare: {} cores, {} round(s) per system{}{}",
        config.cores,
        config.rounds,
        if config.quick { ", quick" } else { "" },
        only.as_ref()
            .map_or(String::new(), |o| format!(", only {o:?}"))
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for (name, family) in FAMILIES {
        let named = only.as_ref().is_some_and(|o| name.contains(o.as_str()));
        if !named && (by_family || ONLY_WHEN_NAMED.contains(&name)) {
            continue;
        }
        let family_started = Instant::now();
        let mut got = family(&config);
        got.retain(|row| config.wants(&row.workload));
        eprintln!(
            "compare: {name}: {} row(s) in {:.1} s",
            got.len(),
            family_started.elapsed().as_secs_f64()
        );
        rows.extend(got);
    }
    println!();
    print!("{}", render_table(&rows));
    println!(
        "\n{} row(s) in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = args.json {
        if let Err(error) = std::fs::write(&path, render_json(config.cores, &rows)) {
            eprintln!("compare: cannot write {path}: {error}");
            return ExitCode::FAILURE;
        }
        println!("wrote {path}");
    }
    ExitCode::SUCCESS
}
