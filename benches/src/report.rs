//! Rendering rows as a text table and as JSON (hand-written: no serde in this workspace).

use std::fmt::Write;

use crate::Row;

/// The rows as a Markdown table, one line per system, the ratio on each workload's first line.
///
/// # Examples
///
/// ```
/// let mut row = benches::Row::new("wake-up p50", "µs", false);
/// row.push("pool-core", true, &[4.0]);
/// row.push("rayon-core", false, &[8.0]);
/// let table = benches::render_table(&[row]);
/// assert!(table.contains("| wake-up p50 | µs | pool-core | 4.00 | 4.00–4.00 | 2.00× |"));
/// ```
pub fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| workload | unit | system | median | min–max | ours / best peer |\n");
    out.push_str("|---|---|---|---:|---:|---:|\n");
    for row in rows {
        let ratio = match row.ratio_to_best_peer() {
            Some(r) if r.is_finite() => format!("{r:.2}×"),
            Some(_) => "∞".to_string(),
            None => "–".to_string(),
        };
        for (i, m) in row.measurements.iter().enumerate() {
            let f = m.figure;
            let (workload, unit, ratio) = if i == 0 {
                (row.workload.as_str(), row.unit.as_str(), ratio.as_str())
            } else {
                ("", "", "")
            };
            let system = &m.system;
            let _ = writeln!(
                out,
                "| {workload} | {unit} | {system} | {} | {}–{} | {ratio} |",
                num(f.median),
                num(f.min),
                num(f.max)
            );
        }
        if row.measurements.is_empty() {
            let _ = writeln!(
                out,
                "| {} | {} | (no figures) | | | |",
                row.workload, row.unit
            );
        }
    }
    let notes: Vec<_> = rows.iter().filter(|r| !r.note.is_empty()).collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for row in notes {
            let _ = writeln!(out, "- {}: {}", row.workload, row.note);
        }
    }
    out
}

/// Three significant-ish digits: 2 decimals below 100, none above.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The rows as JSON: `{"cores": n, "rows": [{"workload", "unit", "higher_is_better", "note",
/// "ratio_to_best_peer", "measurements": [{"system", "ours", "median", "min", "max"}]}]}`.
/// Non-finite numbers are written as `null`.
///
/// # Examples
///
/// ```
/// let mut row = benches::Row::new("say \"hi\"", "µs", false);
/// row.push("pool-core", true, &[1.5]);
/// let json = benches::render_json(2, &[row]);
/// assert!(json.contains(r#""workload": "say \"hi\"""#));
/// assert!(json.contains(r#""median": 1.5"#));
/// assert!(json.contains(r#""ratio_to_best_peer": null"#));
/// ```
pub fn render_json(cores: usize, rows: &[Row]) -> String {
    // serde_json writes the escaping and the number forms; a non-finite figure (an infinite ratio
    // when the best peer measured zero) becomes `null`, which JSON readers accept.
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let measurements: Vec<serde_json::Value> = row
                .measurements
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "system": m.system,
                        "ours": m.ours,
                        "median": m.figure.median,
                        "min": m.figure.min,
                        "max": m.figure.max,
                    })
                })
                .collect();
            serde_json::json!({
                "workload": row.workload,
                "unit": row.unit,
                "higher_is_better": row.higher_is_better,
                "note": row.note,
                "ratio_to_best_peer": row.ratio_to_best_peer(),
                "measurements": measurements,
            })
        })
        .collect();
    let document = serde_json::json!({ "cores": cores, "rows": rows });
    let mut out = serde_json::to_string_pretty(&document)
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
