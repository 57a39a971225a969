//! The machine, the table on stdout and `target/bench/results.json` (rows kept under `_rows`, so that the
//! node part can print the whole table again with its own rows added).

use serde_json::{Value, json};

use crate::common::{Report, Row, Scale};

fn path() -> std::path::PathBuf {
    crate::support::repo_root().join("target/bench/results.json")
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Cores, memory, kernel, load; the scale.
pub fn machine(r: &mut Report, scale: Scale) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next()?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    r.set("machine", "cores", cores);
    r.set(
        "machine",
        "memory",
        format!("{:.1} GiB", mem_kib as f64 / 1048576.0),
    );
    r.set("machine", "memory_mib", mem_kib / 1024);
    r.set("machine", "cpu", cpu);
    // Which build of the operator the loopback scenarios ran: the image's static musl binary
    // (`make bench`), or the cargo build of the bench (`cargo bench` without the variable).
    let bin = std::env::var("JOBRELAY_TEST_OPERATOR_BIN")
        .map(|_| "image (static musl)")
        .unwrap_or("cargo release build (glibc)");
    r.set("machine", "operator_build", bin);
    let load = loadavg();
    let key = if r
        .json
        .get("machine")
        .and_then(|m| m.get("load_start"))
        .is_some()
    {
        "load_node_part"
    } else {
        "load_start"
    };
    r.set("machine", key, load);
    r.set("machine", "quick", scale.quick);
}

/// The loopback part's results (the node part adds to them).
pub fn load() -> Report {
    let mut r = Report::default();
    if let Ok(text) = std::fs::read_to_string(path())
        && let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&text)
    {
        if let Some(Value::Array(rows)) = map.remove("_rows") {
            for row in rows {
                let s = |i: usize| row[i].as_str().unwrap_or("").to_string();
                r.rows.push(Row(s(0), s(1), s(2), s(3), row[4].as_bool()));
            }
        }
        if let Some(Value::Array(notes)) = map.remove("_notes") {
            r.notes = notes
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
        }
        r.json = map;
    }
    r
}

pub fn print_and_save(r: &Report) {
    let mut r2 = Report {
        json: r.json.clone(),
        ..Default::default()
    };
    let load = loadavg();
    r2.set("machine", "load_end", load);
    let m = &r2.json["machine"];
    let loaded = ["load_start", "load_node_part", "load_end"]
        .iter()
        .filter_map(|k| m.get(*k)?.as_f64())
        .fold(0.0f64, f64::max);
    println!(
        "\njobrelay benchmark{} — {} cores, {}, {}; 1-min load average up to {loaded:.2}{}\n",
        if m["quick"] == json!(true) {
            " (QUICK: 1/10 scale)"
        } else {
            ""
        },
        m["cores"],
        m["memory"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or(""),
        if loaded > 1.0 {
            " (LOADED machine: other work ran beside the bench)"
        } else {
            ""
        }
    );
    println!("| scenario | metric | value | target | met |");
    println!("| --- | --- | --- | --- | --- |");
    for Row(s, metric, value, target, met) in &r.rows {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!("| {s} | {metric} | {value} | {target} | {met} |");
    }
    for n in &r.notes {
        println!("\nnote: {n}");
    }
    let mut out = r2.json;
    out.insert(
        "_rows".into(),
        Value::Array(
            r.rows
                .iter()
                .map(|Row(a, b, c, d, e)| json!([a, b, c, d, e]))
                .collect(),
        ),
    );
    out.insert("_notes".into(), json!(r.notes));
    std::fs::create_dir_all(path().parent().unwrap()).unwrap();
    std::fs::write(
        path(),
        serde_json::to_string_pretty(&Value::Object(out)).unwrap(),
    )
    .unwrap();
    println!("\nwritten: {}", path().display());
}
