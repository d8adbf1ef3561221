//! The Polish text of every admin message: one format per alert kind for
//! "opened", one for "reminder", one for "resolved", and the daily report.
//! Each says what is wrong, how bad (value against threshold), since when
//! (account time zone) and where to look. Pure functions over the JSON the
//! database hands the `notify_admin` job; no I/O, so every format is unit-tested.
use serde_json::Value;

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEvent {
    /// The incident began (one message per incident).
    Opened,
    /// Still open after `alert.remind_after`.
    Reminder,
    /// Back under the threshold.
    Resolved,
}

impl AlertEvent {
    /// Reads the job's `event` argument.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "opened" => Some(AlertEvent::Opened),
            "reminder" => Some(AlertEvent::Reminder),
            "resolved" => Some(AlertEvent::Resolved),
            _ => None,
        }
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A number without a needless `.0`, with a space every three digits (Polish style).
fn count(n: f64) -> String {
    if n.fract() != 0.0 {
        return format!("{n:.1}").replace('.', ",");
    }
    let digits = format!("{}", n.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    if n < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A duration in milliseconds, in the unit a reader wants: `850 ms`, `4,2 s`, `3 min 5 s`, `2 h 10 min`.
pub fn duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        return format!("{} ms", ms.round() as i64);
    }
    let s = ms / 1000.0;
    if s < 60.0 {
        return format!("{s:.1} s").replace('.', ",");
    }
    let total = s.round() as i64;
    let (h, m, sec) = (total / 3600, (total % 3600) / 60, total % 60);
    match (h, m, sec) {
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// Postgres interval text (`00:15:00`, `1 day 02:00:00`) as Polish words where simple.
fn window(raw: &str) -> String {
    let parts: Vec<&str> = raw.split(':').collect();
    if let [h, m, s] = parts.as_slice() {
        if let (Ok(h), Ok(m), Ok(s)) = (h.parse::<i64>(), m.parse::<i64>(), s.parse::<f64>()) {
            return duration_ms(((h * 3600 + m * 60) as f64 + s) * 1000.0);
        }
    }
    raw.to_string()
}

/// The title of an alert kind (also used for reminders and "resolved").
pub fn title(kind: &str) -> String {
    match kind {
        "webhook_backlog" => "zaległe webhooki".into(),
        "webhook_stalled" => "webhooki nie są przetwarzane".into(),
        "slow_processing" => "wolne przetwarzanie".into(),
        "job_errors" => "błędy zadań".into(),
        other => other.replace('_', " "),
    }
}

fn link(dashboard: Option<&str>, path: &str) -> String {
    match dashboard {
        Some(base) => format!("{}/{}", base.trim_end_matches('/'), path),
        None => path.to_string(),
    }
}

/// The message about one alert (`alert` is `callsync.alert_for_notification`).
/// `dashboard`: optional base URL put in front of the PostgREST paths.
pub fn alert_message(alert: &Value, event: AlertEvent, dashboard: Option<&str>) -> String {
    let kind = text(alert, "kind");
    let since = format!(
        "{} ({})",
        text(alert, "opened_at"),
        text(alert, "time_zone")
    );
    let value = num(alert, "value");
    let threshold = num(alert, "threshold");
    let details = alert.get("details").cloned().unwrap_or(Value::Null);
    let lasted = duration_ms(num(alert, "open_for_s").unwrap_or(0.0) * 1000.0);
    let alerts = link(dashboard, "alerts?resolved_at=is.null");

    match event {
        AlertEvent::Resolved => {
            let repeats = num(alert, "repeats").unwrap_or(0.0);
            format!(
                "✅ ROZWIĄZANE: {}\nTrwało {lasted}: od {since} do {}. Sprawdzeń z przekroczeniem po otwarciu: {}.\nHistoria: {}",
                title(kind),
                text(alert, "resolved_at"),
                count(repeats),
                link(dashboard, "alerts?order=opened_at.desc"),
            )
        }
        AlertEvent::Reminder => format!(
            "⏰ NADAL TRWA: {}\nOtwarte od {since}, już {lasted}. Ostatni pomiar: {} (próg {}).\nSzczegóły: {alerts}",
            title(kind),
            value.map(count).unwrap_or_else(|| "—".into()),
            threshold.map(count).unwrap_or_else(|| "—".into()),
        ),
        AlertEvent::Opened => match kind {
            "webhook_backlog" => format!(
                "🔴 ALERT: zaległe webhooki\nCzeka {} zadań przetwarzania webhooków (próg {}).\nOd: {since}\nGdzie patrzeć: czy worker działa (fly status, fly logs), czy rodzaj zadania nie jest wstrzymany (callsync.job_kind.paused); {}",
                value.map(count).unwrap_or_default(),
                threshold.map(count).unwrap_or_default(),
                link(dashboard, "sync_log?status=eq.received&order=started_at"),
            ),
            "webhook_stalled" => format!(
                "🔴 ALERT: webhooki nie są przetwarzane\nNajstarszy czeka już {} (próg {}).\nOd: {since}\nGdzie patrzeć: worker prawdopodobnie nie działa lub nie łączy się z bazą (fly status, fly logs); {}",
                duration_ms(value.unwrap_or(0.0) * 1000.0),
                duration_ms(threshold.unwrap_or(0.0) * 1000.0),
                link(dashboard, "sync_log?status=eq.received&order=started_at"),
            ),
            "slow_processing" => format!(
                "🟠 ALERT: wolne przetwarzanie\nCzas przetwarzania webhooka w ostatnich {}: średnio {}, p95 {} ({} zadań; progi: średnio {}, p95 {}).\nOd: {since}\nGdzie patrzeć: obciążenie bazy i workera, czas odpowiedzi LLM; {}",
                window(text(&details, "window")),
                num(&details, "avg_ms").map(duration_ms).unwrap_or_else(|| "—".into()),
                num(&details, "p95_ms").map(duration_ms).unwrap_or_else(|| "—".into()),
                num(&details, "jobs").map(count).unwrap_or_else(|| "—".into()),
                num(&details, "avg_max_ms").map(duration_ms).unwrap_or_else(|| "—".into()),
                num(&details, "p95_max_ms").map(duration_ms).unwrap_or_else(|| "—".into()),
                link(dashboard, "rpc/job_stats"),
            ),
            "job_errors" => {
                let mut top: Vec<(String, f64)> = details
                    .get("by_kind")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
                            .collect()
                    })
                    .unwrap_or_default();
                top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let top: Vec<String> = top
                    .iter()
                    .take(3)
                    .map(|(k, n)| format!("{k} {}", count(*n)))
                    .collect();
                format!(
                    "🔴 ALERT: błędy zadań\n{} nieudanych prób w ostatnich {} (próg {}). Najwięcej: {}.\nOd: {since}\nGdzie patrzeć: {}",
                    value.map(count).unwrap_or_default(),
                    window(text(&details, "window")),
                    threshold.map(count).unwrap_or_default(),
                    if top.is_empty() { "—".into() } else { top.join(", ") },
                    link(dashboard, "error_log?order=occurred_at.desc"),
                )
            }
            _ => {
                let measured = match (value, threshold) {
                    (Some(v), Some(t)) => format!(" Wartość {} (próg {}).", count(v), count(t)),
                    (Some(v), None) => format!(" Wartość {}.", count(v)),
                    _ => String::new(),
                };
                format!(
                    "⚠️ ALERT: {}\n{}{measured}\nOd: {since}\nGdzie patrzeć: {}, {}",
                    title(kind),
                    text(alert, "message"),
                    alerts,
                    link(dashboard, "error_log?order=occurred_at.desc"),
                )
            }
        },
    }
}

/// The daily report message (`report` is a `callsync.daily_report` row as JSON).
pub fn report_message(report: &Value, dashboard: Option<&str>) -> String {
    let n = |k: &str| num(report, k).map(count).unwrap_or_else(|| "0".into());
    let ms = |k: &str| {
        num(report, k)
            .map(duration_ms)
            .unwrap_or_else(|| "—".into())
    };
    let day = text(report, "day");
    let new_calls = num(report, "new_calls").unwrap_or(0.0);
    let matched = num(report, "calls_matched").unwrap_or(0.0);
    let rate = if new_calls > 0.0 {
        format!(" ({:.1}%)", 100.0 * matched / new_calls).replace('.', ",")
    } else {
        String::new()
    };
    let rec = report.get("reconciliation").cloned().unwrap_or(Value::Null);
    let reconciliation = if rec.get("available").and_then(Value::as_bool) == Some(true) {
        let r = |k: &str| num(&rec, k).map(count).unwrap_or_else(|| "0".into());
        let mut line = format!(
            "Rekoncyliacja Callyzer: {} przebiegów — udane {}, nieudane {}, w toku {}; pobrane {}, nowe {}, zaktualizowane {}, pominięte {}",
            r("runs"),
            r("succeeded"),
            r("failed"),
            r("running"),
            r("fetched"),
            r("new"),
            r("updated"),
            r("skipped"),
        );
        if let Some(err) = rec.get("last_error").and_then(Value::as_str) {
            let err: String = err.chars().take(160).collect();
            line.push_str(&format!("\nOstatni błąd rekoncyliacji: {err}"));
        }
        line
    } else {
        "Rekoncyliacja Callyzer: brak dziennika synchronizacji".to_string()
    };
    format!(
        "📊 Raport dzienny {day} ({})\n\
         Webhooki: odebrane {}, przetworzone {}, nieudane {}, odrzucone {}, powtórzone {}\n\
         Błędy zadań: {} (porzucone zadania: {})\n\
         Czas przetwarzania webhooka: średnio {}, p95 {} ({} zadań); oczekiwanie w kolejce: średnio {}, p95 {}\n\
         Rozmowy: nowe {}, dopasowane do leadów {}{rate}, bez leada z tego dnia {}; nieprzypisane czekające łącznie {}\n\
         {reconciliation}\n\
         Szczegóły: {}",
        text(report, "time_zone"),
        n("webhooks_received"),
        n("webhooks_processed"),
        n("webhooks_failed"),
        n("webhooks_rejected"),
        n("webhooks_duplicates"),
        n("job_errors"),
        n("jobs_discarded"),
        ms("processing_avg_ms"),
        ms("processing_p95_ms"),
        n("processing_jobs"),
        ms("wait_avg_ms"),
        ms("wait_p95_ms"),
        n("new_calls"),
        n("calls_matched"),
        n("calls_unmatched"),
        n("unmatched_waiting"),
        link(dashboard, &format!("daily_reports?day=eq.{day}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(kind: &str, value: f64, threshold: f64, details: Value) -> Value {
        json!({"id": 1, "kind": kind, "message": "m", "value": value, "threshold": threshold,
               "details": details, "repeats": 4, "reminders": 0, "opened_at": "2026-11-20 10:15",
               "resolved_at": "2026-11-20 10:42", "open_for_s": 1620, "time_zone": "Europe/Warsaw"})
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(850.0), "850 ms");
        assert_eq!(duration_ms(4200.0), "4,2 s");
        assert_eq!(duration_ms(185_000.0), "3 min 5 s");
        assert_eq!(duration_ms(7_800_000.0), "2 h 10 min");
        assert_eq!(window("00:15:00"), "15 min");
        assert_eq!(count(12345.0), "12\u{a0}345");
    }

    #[test]
    fn every_known_kind_says_what_how_bad_since_when_and_where() {
        let cases = [
            alert("webhook_backlog", 240.0, 100.0, json!({"pending": 240})),
            alert("webhook_stalled", 600.0, 300.0, json!({})),
            alert(
                "slow_processing",
                75000.0,
                60000.0,
                json!({"avg_ms": 21000, "p95_ms": 75000, "jobs": 40, "avg_max_ms": 20000,
                       "p95_max_ms": 60000, "window": "00:15:00"}),
            ),
            alert(
                "job_errors",
                12.0,
                10.0,
                json!({"by_kind": {"crm_dispatch": 9, "callyzer_delivery": 3}, "window": "00:15:00"}),
            ),
            alert("callyzer_auth", 1.0, 0.0, json!({})),
        ];
        for a in &cases {
            let m = alert_message(a, AlertEvent::Opened, None);
            assert!(m.contains("ALERT"), "{m}");
            assert!(
                m.contains("2026-11-20 10:15 (Europe/Warsaw)"),
                "since when: {m}"
            );
            assert!(m.contains("Gdzie patrzeć"), "where to look: {m}");
        }
        let backlog = alert_message(&cases[0], AlertEvent::Opened, None);
        assert!(
            backlog.contains("Czeka 240") && backlog.contains("próg 100"),
            "{backlog}"
        );
        let slow = alert_message(&cases[2], AlertEvent::Opened, None);
        assert!(
            slow.contains("p95 1 min 15 s") && slow.contains("15 min"),
            "{slow}"
        );
        let errors = alert_message(
            &cases[3],
            AlertEvent::Opened,
            Some("https://x.supabase.co/rest/v1/"),
        );
        assert!(
            errors.contains("crm_dispatch 9, callyzer_delivery 3"),
            "{errors}"
        );
        assert!(
            errors.contains("https://x.supabase.co/rest/v1/error_log"),
            "{errors}"
        );
    }

    #[test]
    fn resolved_says_how_long_it_lasted() {
        let m = alert_message(
            &alert("webhook_backlog", 5.0, 100.0, json!({})),
            AlertEvent::Resolved,
            None,
        );
        assert!(m.starts_with("✅ ROZWIĄZANE: zaległe webhooki"), "{m}");
        assert!(
            m.contains("Trwało 27 min") && m.contains("do 2026-11-20 10:42"),
            "{m}"
        );
    }

    #[test]
    fn a_reminder_says_it_is_still_open_and_for_how_long() {
        let m = alert_message(
            &alert("job_errors", 14.0, 10.0, json!({})),
            AlertEvent::Reminder,
            None,
        );
        assert!(m.starts_with("⏰ NADAL TRWA: błędy zadań"), "{m}");
        assert!(
            m.contains("już 27 min") && m.contains("14 (próg 10)"),
            "{m}"
        );
    }

    #[test]
    fn the_daily_report_lists_every_figure() {
        let r = json!({"day": "2026-11-19", "time_zone": "Europe/Warsaw", "webhooks_received": 1200,
            "webhooks_processed": 1198, "webhooks_failed": 2, "webhooks_rejected": 3, "webhooks_duplicates": 1,
            "job_errors": 4, "jobs_discarded": 1, "processing_jobs": 1198, "processing_avg_ms": 42.4,
            "processing_p95_ms": 130.2, "wait_avg_ms": 12.0, "wait_p95_ms": 40.0, "new_calls": 2000,
            "calls_matched": 1500, "calls_unmatched": 500, "unmatched_waiting": 800,
            "reconciliation": {"available": true, "runs": 24, "succeeded": 23, "failed": 1, "running": 0,
                               "fetched": 100, "new": 5, "updated": 1, "skipped": 94, "last_error": "auth"}});
        let m = report_message(&r, None);
        for part in [
            "Raport dzienny 2026-11-19",
            "odebrane 1\u{a0}200",
            "przetworzone 1\u{a0}198",
            "Błędy zadań: 4",
            "średnio 42 ms, p95 130 ms",
            "dopasowane do leadów 1\u{a0}500 (75,0%)",
            "czekające łącznie 800",
            "24 przebiegów — udane 23, nieudane 1",
            "daily_reports?day=eq.2026-11-19",
        ] {
            assert!(m.contains(part), "{part:?} missing from {m}");
        }
    }
}
