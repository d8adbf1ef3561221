//! Process-wide metrics in memory, written out in the Prometheus text format by
//! the `/metrics` endpoint ([`crate::health`]): jobs by kind and outcome, job
//! durations, and calls to outside systems by system and status. Any module
//! records with one call ([`job_finished`], [`external_call`],
//! [`record_response`]); nothing here does I/O. Figures that live in the
//! database (queue depth, webhook rejections) are read per scrape by the
//! endpoint, not kept here.
//!
//! Hand-written rather than a metrics crate: three families, one lock each,
//! and the exposition format is a few lines of text.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the job duration buckets, in seconds (plus `+Inf`).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    /// Per bucket, not cumulative; the overflow bucket is last.
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
struct Registry {
    jobs: Mutex<BTreeMap<(String, String), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    external: Mutex<BTreeMap<(String, String), u64>>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// One job run ended with `outcome` (completed, retryable, discarded,
/// lease_lost, released) after `elapsed`.
pub fn job_finished(kind: &str, outcome: &str, elapsed: Duration) {
    let r = registry();
    if let Ok(mut jobs) = r.jobs.lock() {
        *jobs
            .entry((kind.to_string(), outcome.to_string()))
            .or_default() += 1;
    }
    if let Ok(mut durations) = r.durations.lock() {
        let secs = elapsed.as_secs_f64();
        let h = durations.entry(kind.to_string()).or_default();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        h.counts[bucket] += 1;
        h.sum += secs;
    }
}

/// One request to an outside system (`callyzer`, `bpmsoft`, `llm`, `notify`)
/// ended with `status`: the HTTP status code, or `timeout` / `error` when no
/// answer came.
pub fn external_call(system: &str, status: &str) {
    if let Ok(mut external) = registry().external.lock() {
        *external
            .entry((system.to_string(), status.to_string()))
            .or_default() += 1;
    }
}

/// [`external_call`] for a reqwest result, so a client records with one line
/// right after `.send().await`.
pub fn record_response(system: &str, sent: &Result<reqwest::Response, reqwest::Error>) {
    match sent {
        Ok(response) => external_call(system, response.status().as_str()),
        Err(e) if e.is_timeout() => external_call(system, "timeout"),
        Err(_) => external_call(system, "error"),
    }
}

/// Writes every in-memory family in the Prometheus text format.
pub fn render(out: &mut String) {
    let r = registry();
    family(
        out,
        "callsync_jobs_total",
        "counter",
        "Job runs finished by this process, by kind and outcome.",
    );
    if let Ok(jobs) = r.jobs.lock() {
        for ((kind, outcome), n) in jobs.iter() {
            sample(
                out,
                "callsync_jobs_total",
                &[("kind", kind), ("outcome", outcome)],
                *n as f64,
            );
        }
    }
    family(
        out,
        "callsync_job_duration_seconds",
        "histogram",
        "Time from claim to outcome of one job run, by kind.",
    );
    if let Ok(durations) = r.durations.lock() {
        for (kind, h) in durations.iter() {
            let mut cumulative = 0;
            for (i, le) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let le = le.to_string();
                sample(
                    out,
                    "callsync_job_duration_seconds_bucket",
                    &[("kind", kind), ("le", &le)],
                    cumulative as f64,
                );
            }
            cumulative += h.counts[DURATION_BUCKETS.len()];
            sample(
                out,
                "callsync_job_duration_seconds_bucket",
                &[("kind", kind), ("le", "+Inf")],
                cumulative as f64,
            );
            sample(
                out,
                "callsync_job_duration_seconds_sum",
                &[("kind", kind)],
                h.sum,
            );
            sample(
                out,
                "callsync_job_duration_seconds_count",
                &[("kind", kind)],
                cumulative as f64,
            );
        }
    }
    family(
        out,
        "callsync_external_requests_total",
        "counter",
        "Requests to outside systems, by system and HTTP status (timeout, error: no answer).",
    );
    if let Ok(external) = r.external.lock() {
        for ((system, status), n) in external.iter() {
            sample(
                out,
                "callsync_external_requests_total",
                &[("system", system), ("status", status)],
                *n as f64,
            );
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line, escaping label values as the format requires.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        job_finished("unit_test_kind", "completed", Duration::from_millis(30));
        job_finished("unit_test_kind", "completed", Duration::from_secs(400));
        external_call("unit_test_system", "503");
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("# TYPE callsync_jobs_total counter"));
        assert!(
            out.contains("callsync_jobs_total{kind=\"unit_test_kind\",outcome=\"completed\"} 2")
        );
        assert!(out.contains(
            "callsync_job_duration_seconds_bucket{kind=\"unit_test_kind\",le=\"0.05\"} 1"
        ));
        assert!(out.contains(
            "callsync_job_duration_seconds_bucket{kind=\"unit_test_kind\",le=\"+Inf\"} 2"
        ));
        assert!(out.contains("callsync_job_duration_seconds_count{kind=\"unit_test_kind\"} 2"));
        assert!(out.contains(
            "callsync_external_requests_total{system=\"unit_test_system\",status=\"503\"} 1"
        ));
    }

    #[tokio::test]
    async fn a_client_records_its_outside_calls_with_one_line() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let http = reqwest::Client::new();
        let sent = http.get(server.uri()).send().await;
        record_response("unit_wire", &sent);
        let refused = http.get("http://127.0.0.1:1/").send().await;
        record_response("unit_wire", &refused);
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains("callsync_external_requests_total{system=\"unit_wire\",status=\"503\"} 1")
        );
        assert!(out
            .contains("callsync_external_requests_total{system=\"unit_wire\",status=\"error\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("reason", "a\"b\\c\nd")], 1.0);
        assert_eq!(out, "m{reason=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
