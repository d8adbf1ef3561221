//! CPU accounting for the load run: CPU-seconds (utime + stime from
//! /proc/<pid>/stat) of every process on the delivery path, read before and
//! after a phase. Unlike wall-clock throughput this does not depend on what
//! else the shared machine is doing, so it is the figure to compare runs by.
//!
//! Postgres is split by who the backend serves (pg_stat_activity's user):
//! PostgREST's sessions (`authenticator`), the worker's (`callsync_worker`),
//! and the rest (the harness's own sessions, background processes, the
//! postmaster, and backends that exited: their time lands in the postmaster's
//! cutime/cstime when it reaps them, so nothing is lost between snapshots).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

/// Processes outside Postgres, by role in the path.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: &'static str,
    pub pid: u32,
}

/// One reading of every part.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    /// part -> CPU seconds so far
    parts: BTreeMap<String, f64>,
    /// the whole machine, all cores: (busy, total) jiffies
    machine: (u64, u64),
    load1: f64,
}

fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// (ppid, own CPU s, reaped children's CPU s) of `pid`.
fn proc_stat(pid: u32) -> Option<(u32, f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let t = ticks_per_second();
    Some((n(1)? as u32, (n(11)? + n(12)?) / t, (n(13)? + n(14)?) / t))
}

fn machine() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    loadavg()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them
/// (how busy the shared machine was during a run).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds (user + system) this process has used so far.
pub fn own_cpu_secs() -> f64 {
    proc_stat(std::process::id()).map_or(0.0, |(_, own, _)| own)
}

/// The postmaster's pid, from the cluster's data directory.
pub fn postmaster_pid(cluster_dir: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(cluster_dir.join("data/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Which part a Postgres backend's CPU belongs to, by its session user.
pub fn backend_part(user: Option<&str>) -> &'static str {
    match user {
        Some("authenticator") => "postgres: PostgREST sessions",
        Some("callsync_worker") => "postgres: worker sessions",
        _ => "postgres: other (harness, background, exited)",
    }
}

/// Reads every part now. `backends`: pid -> part of the live backends (from
/// pg_stat_activity, read just before).
pub fn snapshot(
    named: &[Named],
    postmaster: u32,
    backends: &BTreeMap<u32, &'static str>,
) -> Snapshot {
    let mut parts = BTreeMap::<String, f64>::new();
    for p in named {
        if let Some((_, own, _)) = proc_stat(p.pid) {
            *parts.entry(p.name.to_string()).or_default() += own;
        }
    }
    let other = backend_part(None);
    if let Some((_, own, reaped)) = proc_stat(postmaster) {
        *parts.entry(other.to_string()).or_default() += own + reaped;
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((ppid, own, _)) = proc_stat(pid) else {
            continue;
        };
        if ppid == postmaster {
            let part = backends.get(&pid).copied().unwrap_or(other);
            *parts.entry(part.to_string()).or_default() += own;
        }
    }
    Snapshot {
        at: Instant::now(),
        parts,
        machine: machine(),
        load1: load1(),
    }
}

/// What a phase cost: CPU seconds per part between two snapshots.
pub fn between(a: &Snapshot, b: &Snapshot, deliveries: u64) -> serde_json::Value {
    let wall = (b.at - a.at).as_secs_f64();
    let mut cpu = serde_json::Map::new();
    let mut per = serde_json::Map::new();
    let mut total = 0.0;
    for (k, after) in &b.parts {
        let d = (after - a.parts.get(k).copied().unwrap_or(0.0)).max(0.0);
        total += d;
        cpu.insert(k.clone(), serde_json::json!(round3(d)));
        per.insert(
            k.clone(),
            serde_json::json!(round3(d * 1000.0 / deliveries.max(1) as f64)),
        );
    }
    let busy = b.machine.0.saturating_sub(a.machine.0) as f64;
    let all = b.machine.1.saturating_sub(a.machine.1).max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    serde_json::json!({
        "wall_s": round3(wall),
        "deliveries": deliveries,
        "cpu_s": cpu,
        "cpu_s_total": round3(total),
        "cpu_ms_per_delivery": per,
        "cpu_ms_per_delivery_total": round3(total * 1000.0 / deliveries.max(1) as f64),
        // of the machine's cores, how many were busy on average (everyone's work)
        "machine_busy_cores": round3(busy / all * cores),
        "path_busy_cores": round3(total / wall.max(1e-9)),
        "load1_at_start": a.load1,
        "load1_at_end": b.load1,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One line per part, largest first.
pub fn table(phase: &str, v: &serde_json::Value) -> String {
    let mut rows: Vec<(String, f64, f64)> = v["cpu_s"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        s.as_f64().unwrap_or(0.0),
                        v["cpu_ms_per_delivery"][k].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = format!(
        "CPU {phase}: {} deliveries in {:.1} s wall, load average {:.1} -> {:.1}, machine busy {:.2} cores, path {:.2} cores\n",
        v["deliveries"], v["wall_s"].as_f64().unwrap_or(0.0),
        v["load1_at_start"].as_f64().unwrap_or(0.0), v["load1_at_end"].as_f64().unwrap_or(0.0),
        v["machine_busy_cores"].as_f64().unwrap_or(0.0), v["path_busy_cores"].as_f64().unwrap_or(0.0),
    );
    for (k, s, per) in rows {
        out.push_str(&format!("  {k:<48} {s:>9.2} s  {per:>7.3} ms/delivery\n"));
    }
    out.push_str(&format!(
        "  {:<48} {:>9.2} s  {:>7.3} ms/delivery\n",
        "total",
        v["cpu_s_total"].as_f64().unwrap_or(0.0),
        v["cpu_ms_per_delivery_total"].as_f64().unwrap_or(0.0)
    ));
    out
}
