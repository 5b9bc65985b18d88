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
    let mut out = String::new();
    let _ = writeln!(out, "{{\n  \"cores\": {cores},\n  \"rows\": [");
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(out, "    {{");
        let _ = writeln!(out, "      \"workload\": {},", string(&row.workload));
        let _ = writeln!(out, "      \"unit\": {},", string(&row.unit));
        let _ = writeln!(out, "      \"higher_is_better\": {},", row.higher_is_better);
        let _ = writeln!(out, "      \"note\": {},", string(&row.note));
        let ratio = row.ratio_to_best_peer().map_or("null".to_string(), number);
        let _ = writeln!(out, "      \"ratio_to_best_peer\": {ratio},");
        let _ = writeln!(out, "      \"measurements\": [");
        for (j, m) in row.measurements.iter().enumerate() {
            let f = m.figure;
            let _ = writeln!(
                out,
                "        {{\"system\": {}, \"ours\": {}, \"median\": {}, \"min\": {}, \"max\": {}}}{}",
                string(&m.system),
                m.ours,
                number(f.median),
                number(f.min),
                number(f.max),
                if j + 1 < row.measurements.len() { "," } else { "" }
            );
        }
        let _ = writeln!(out, "      ]");
        let _ = writeln!(out, "    }}{}", if i + 1 < rows.len() { "," } else { "" });
    }
    out.push_str("  ]\n}\n");
    out
}

fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
