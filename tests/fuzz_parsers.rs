//! Property-based fuzzing (proptest) of every Rust function that reads outside
//! input: the Callyzer delivery parser and its timestamps, the phone
//! normalizers, the ElevenLabs event parser and the analysis built from it, the
//! BPMsoft and Callyzer API answer classifiers, and the configuration parser.
//! Each property says "no panic, no hang" and, where there is one, the promise
//! the parser makes (every call record is accounted for; a phone number is
//! E.164; logs never see a full number). cargo-fuzz needs nightly, which this
//! project does not use; proptest runs on stable inside `cargo test`.
//!
//! Case count: `FUZZ_CASES` (default 1,000 per property, about 10 s for the
//! file on the 2-core CI machine). `scripts/soak.sh` runs 50,000. A hang is
//! caught by a watchdog per property. Every input a run has ever shrunk to
//! is kept below as a named regression test. The ElevenLabs signature header
//! parser is TypeScript: its property test is
//! `supabase/functions/tests/signature-fuzz-test.ts`.
#![allow(clippy::unwrap_used)]

use callsync::clients::{bpmsoft, callyzer};
use callsync::config::Config;
use callsync::domain::call_analysis::{CallAnalysis, QualityScore};
use callsync::domain::call_record::{parse_delivery, CallyzerTimestamp};
use callsync::domain::call_type::CallType;
use callsync::domain::contact_phone::ContactPhone;
use callsync::domain::elevenlabs_event::ElevenLabsEvent;
use callsync::domain::email_address::EmailAddress;
use callsync::domain::phone_number::PhoneNumber;
use callsync::jobs::callyzer_call_in::CallIn;
use callsync::jobs::elevenlabs_analysis::{derived, stated};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Cases per property (fixed by default, so CI time stays bounded).
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// Runs the strategy `make` builds through `property` for [`cases`] cases on a watchdog
/// thread; a case that panics fails the test with the shrunk input, a run
/// that does not finish in time fails it as a hang.
fn fuzz<S, M>(name: &str, make: M, property: fn(S::Value))
where
    S: Strategy,
    S::Value: Clone + std::fmt::Debug,
    S::Value: 'static,
    M: FnOnce() -> S + Send + 'static,
{
    let cases = cases();
    let budget = Duration::from_secs(60 + u64::from(cases) / 20);
    let (done, wait) = std::sync::mpsc::channel();
    let name_owned = name.to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            let mut runner = TestRunner::new(RunnerConfig {
                cases,
                failure_persistence: None,
                ..RunnerConfig::default()
            });
            let result = runner.run(&make(), |v| {
                property(v);
                Ok(())
            });
            let _ = done.send(result.map_err(|e| format!("{name_owned}: {e}")));
        })
        .unwrap();
    match wait.recv_timeout(budget) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("{name}: no answer within {budget:?} for {cases} cases: a parser hangs"),
    }
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Text that is hard on parsers: unicode, controls, NUL, lookalike digits,
/// separators and signs, empty and long.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[0-9+ ()./-]{0,40}",
        "[+0]{0,3}[0-9\u{0660}-\u{0669}\u{FF10}-\u{FF19}]{0,20}",
        "[\u{0}-\u{1f}\u{7f}\u{200b}\u{feff}\u{202e}]{0,8}",
        Just(String::new()),
        "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}.{0,8}",
        "x{0,5000}",
    ]
}

/// Any JSON value, nested a few levels, with hostile leaves.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<u64>().prop_map(|n| json!(n)),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,12}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A plausible value for a Callyzer field, or anything at all.
fn field(plausible: Vec<Value>) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(plausible),
        1 => any_json(),
    ]
}

/// One call-log record: Callyzer's shape with each field good, bad or missing.
fn call_log() -> impl Strategy<Value = Value> {
    (
        field(vec![json!("c-1"), json!(42), json!(""), json!("  ")]),
        field(vec![json!("48"), json!("+48"), json!(""), json!(91)]),
        field(vec![
            json!("601 202 303"),
            json!("+48601202303"),
            json!("0048601202303"),
            json!("0601-202-303"),
            json!("*31#"),
            json!(""),
        ]),
        field(vec![json!(60), json!("60"), json!(-1), json!(1e12)]),
        field(vec![
            json!("Incoming"),
            json!("Outgoing"),
            json!("Missed"),
            json!("Rejected"),
            json!("Blocked"),
        ]),
        field(vec![
            json!("2026-01-15"),
            json!("2026-02-30"),
            json!("15/01/2026"),
        ]),
        field(vec![json!("10:00:00"), json!("25:00:00"), json!("10:00")]),
        field(vec![
            json!("2026-01-15 10:05:00"),
            json!("2026-01-15 10:05:00 +05:30"),
            json!("2026-01-15 10:05:00 IST"),
            json!("2026-01-15T10:05:00Z"),
        ]),
        prop::collection::vec(("[a-z_]{1,10}", any_json()), 0..3),
    )
        .prop_map(|(id, cc, num, dur, ty, date, time, modified, extra)| {
            let mut o = Map::new();
            for (k, v) in [
                ("id", id),
                ("client_country_code", cc),
                ("client_number", num),
                ("duration", dur),
                ("call_type", ty),
                ("call_date", date),
                ("call_time", time),
                ("modified_at", modified.clone()),
                ("synced_at", modified),
            ] {
                o.insert(k.to_string(), v);
            }
            for (k, v) in extra {
                o.insert(k, v);
            }
            Value::Object(o)
        })
}

/// A delivery: an array of employees (sometimes wrapped in `{result: …}`),
/// some of which are broken.
fn delivery() -> impl Strategy<Value = Value> {
    let employee = prop_oneof![
        6 => (
            field(vec![json!("SALES-07"), json!(7), json!("")]),
            field(vec![json!("48"), json!("")]),
            field(vec![json!("600100200"), json!("+48600100200"), json!("x")]),
            prop::collection::vec(call_log(), 0..6),
        )
            .prop_map(|(code, cc, num, logs)| {
                json!({"emp_code": code, "emp_name": "E", "emp_country_code": cc,
                       "emp_number": num, "emp_tags": ["a"], "call_logs": logs})
            }),
        1 => any_json(),
    ];
    (prop::collection::vec(employee, 0..5), any::<bool>()).prop_map(|(emps, wrap)| {
        if wrap {
            json!({ "result": emps })
        } else {
            Value::Array(emps)
        }
    })
}

/// An ElevenLabs body: the webhook envelope or an operator's bare
/// conversation, fields good, wrong-typed or missing.
fn elevenlabs_body() -> impl Strategy<Value = Value> {
    let turn = field(vec![
        json!({"role": "user", "message": "Hello, I am Jan, +48 601 202 303"}),
        json!({"role": "agent", "message": null, "tool_calls": [{}]}),
        json!({"role": 7}),
    ]);
    let analysis = field(vec![
        json!({"call_successful": "success", "transcript_summary": "s",
               "data_collection_results": {"phone": {"value": "601202303"}, "email": {"value": "a@b.pl"}},
               "evaluation_criteria_results": {"c": {"result": "success", "rationale": "r"}}}),
        json!({"data_collection_results": [{"data_collection_id": "name", "value": 5}]}),
        json!({"evaluation_criteria_results": [{"criteria_id": 1}]}),
    ]);
    (
        field(vec![json!("post_call_transcription"), json!("x")]),
        prop::collection::vec(turn, 0..5),
        analysis,
        field(vec![
            json!({"phone_call": {"external_number": "+375291234567", "direction": "inbound"}}),
            json!({"phone_call": "x"}),
        ]),
        field(vec![
            json!({"dynamic_variables": {"phone": "+48601202303", "name": "Jan"}}),
        ]),
        any::<bool>(),
    )
        .prop_map(|(ty, transcript, analysis, metadata, init, envelope)| {
            let data = json!({"conversation_id": "conv_1", "agent_id": "agent_1",
                "transcript": transcript, "analysis": analysis, "metadata": metadata,
                "conversation_initiation_client_data": init});
            if envelope {
                json!({"type": ty, "event_timestamp": 1_763_000_000, "data": data})
            } else {
                data
            }
        })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn is_e164(s: &str) -> bool {
    let digits = &s[1..];
    s.starts_with('+')
        && (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Logs may show the last three digits of a number, never the whole of it.
fn debug_hides(debug: &str, e164: &str) {
    assert!(
        !debug.contains(&e164[1..]),
        "Debug output {debug:?} shows the full number"
    );
}

#[test]
fn the_callyzer_delivery_parser_accounts_for_every_call_record_and_never_panics() {
    fuzz(
        "callyzer delivery",
        || (delivery(), "[0-9]{0,3}"),
        |(body, country)| {
            let employees: Vec<&Value> = match &body {
                Value::Array(a) => a.iter().collect(),
                Value::Object(o) => o["result"].as_array().unwrap().iter().collect(),
                _ => unreachable!(),
            };
            let sent: usize = employees
                .iter()
                .filter_map(|e| e.get("call_logs").and_then(Value::as_array))
                .map(Vec::len)
                .sum();
            let d = parse_delivery(&body, &country).unwrap();
            let refused = d
                .problems
                .iter()
                .filter(|p| !p.stored && p.call.is_some())
                .count();
            assert_eq!(
                d.records.len() + refused,
                sent,
                "every call record must end stored or refused with a reason"
            );
            for r in &d.records {
                assert!(!r.id.trim().is_empty());
                assert!(r.duration_s >= 0, "negative duration stored");
                if let Some(p) = &r.client_phone {
                    assert!(is_e164(p.as_str()), "{:?}", p.as_str());
                    debug_hides(&format!("{r:?}"), p.as_str());
                    // the row sent to the apply statement hides it too
                    debug_hides(&format!("{:?}", CallIn::new(r, None)), p.as_str());
                }
            }
            for p in &d.problems {
                assert!(p.error.len() < 500, "a problem text is bounded");
            }
        },
    );
}

#[test]
fn the_callyzer_delivery_parser_survives_any_json_at_all() {
    fuzz("callyzer delivery (any json)", any_json, |body| {
        let _ = parse_delivery(&body, "48");
    });
}

#[test]
fn callyzer_timestamps_parse_or_refuse_without_panicking() {
    fuzz("callyzer timestamp", hostile_text, |raw| {
        if let Some(t) = CallyzerTimestamp::parse(&raw) {
            assert_eq!(t.raw, raw);
            if let Some(off) = t.offset_s {
                assert!(off.abs() <= 14 * 3600 + 59 * 60);
            }
        }
    });
}

#[test]
fn the_callyzer_phone_normalizer_returns_e164_or_an_error_and_logs_only_the_tail() {
    fuzz(
        "phone from_parts",
        || (hostile_text(), hostile_text(), "[0-9]{0,4}"),
        |(cc, number, default)| {
            if let Ok(p) = PhoneNumber::from_parts(&cc, &number, &default) {
                assert!(is_e164(p.as_str()), "{:?} from {number:?}", p.as_str());
                debug_hides(&format!("{p:?}"), p.as_str());
                // normalizing a normalized number changes nothing
                assert_eq!(
                    PhoneNumber::from_parts("", p.as_str(), "").unwrap(),
                    p,
                    "not idempotent"
                );
            }
        },
    );
}

#[test]
fn the_contact_phone_normalizer_returns_e164_or_an_error_and_logs_only_the_tail() {
    fuzz(
        "contact phone",
        || (hostile_text(), prop::option::of("[0-9]{0,4}")),
        |(raw, country)| {
            if let Ok(p) = ContactPhone::parse(&raw, country.as_deref()) {
                assert!(is_e164(p.as_str()), "{:?} from {raw:?}", p.as_str());
                debug_hides(&format!("{p:?}"), p.as_str());
            }
            let _ = EmailAddress::parse(&raw).map(|e| format!("{e:?}"));
            let _ = CallType::parse(&raw);
        },
    );
}

#[test]
fn the_elevenlabs_event_parser_and_the_analysis_built_from_it_never_panic() {
    fuzz("elevenlabs event", elevenlabs_body, |body| {
        let event = ElevenLabsEvent::parse(&body).unwrap();
        let contact = event.contact(Some("48"));
        let _ = contact.to_json();
        let _ = event.transcript_text();
        let so_far = stated(&event);
        let full = derived(&event, &so_far);
        if let Some(score) = full.to_json().get("quality_score").and_then(Value::as_u64) {
            assert!((1..=5).contains(&score), "score {score} outside 1-5");
        }
    });
}

#[test]
fn the_elevenlabs_event_parser_survives_any_json_at_all() {
    fuzz("elevenlabs event (any json)", any_json, |body| {
        if let Ok(event) = ElevenLabsEvent::parse(&body) {
            let _ = event.contact(None);
            let _ = derived(&event, &stated(&event));
        }
        let a = CallAnalysis::from_json(&body);
        let _ = a.to_json();
        if let Some(s) = QualityScore::from_json(&body) {
            assert!((1..=5).contains(&s.get()));
        }
    });
}

#[test]
fn the_bpmsoft_answer_classifier_reads_any_text_without_panicking() {
    let answer = || {
        prop_oneof![
            hostile_text(),
            any_json().prop_map(|v| v.to_string()),
            ("-?[0-9]{1,25}", ".{0,20}").prop_map(|(code, msg)| {
                json!({
            "SaveWebFormObjectDataResult": format!("{{resultCode:{code},resultMessage:\"{msg}\"}}")
        })
        .to_string()
            }),
            hostile_text()
                .prop_map(|inner| json!({"SaveWebFormLeadDataResult": inner}).to_string()),
        ]
    };
    fuzz("bpmsoft answer", answer, |text| {
        let _ = bpmsoft::classify_body(&text);
        let _ = bpmsoft::parse_inner(&text);
    });
}

#[test]
fn the_callyzer_api_answer_classifier_reads_any_status_and_text_without_panicking() {
    fuzz(
        "callyzer api answer",
        || {
            (
                any::<u16>(),
                prop::option::of(any::<u32>()),
                prop_oneof![hostile_text(), any_json().prop_map(|v| v.to_string())],
                hostile_text(),
            )
        },
        |(status, retry, text, header)| {
            let _ = callyzer::classify(
                status,
                retry.map(|s| Duration::from_secs(u64::from(s))),
                &text,
            );
            if let Some(d) = callyzer::parse_retry_after(&header, chrono::Utc::now()) {
                assert!(d <= Duration::from_secs(u64::from(u32::MAX)));
            }
        },
    );
}

const CONFIG_KEYS: &[&str] = &[
    "WORKER_ID",
    "WORKER_CONCURRENCY",
    "WORKER_CLAIM_LOOPS",
    "WORKER_POLL_INTERVAL_MS",
    "WORKER_LEASE_SECS",
    "WORKER_DRAIN_SECS",
    "WORKER_LISTEN",
    "DB_POOL_SIZE",
    "LOG_FORMAT",
    "HEALTH_ADDR",
    "CALLYZER_API_BASE_URL",
    "CALLYZER_API_CALL_METHOD",
    "CALLYZER_API_CALL_MODE",
    "CALLYZER_API_EXCLUDE_NUMBERS",
    "CALLYZER_API_TIMEOUT_SECS",
    "CALLYZER_API_VERSION",
    "CRM_DEFAULT_COUNTRY_CODE",
    "CRM_LANDING_ID",
    "CRM_NO_CONTACT_POLICY",
    "CRM_SERVICE_URL",
    "CRM_TIMEOUT_SECS",
    "CRM_TRUSTED_ORIGIN",
    "EXTERNAL_CRM_DRY_RUN",
    "EXTERNAL_CRM_ENABLED",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_TIMEOUT_SECS",
    "NOTIFY_DASHBOARD_URL",
    "NOTIFY_TELEGRAM_API_URL",
    "NOTIFY_TELEGRAM_CHAT_ID",
    "NOTIFY_TIMEOUT_SECS",
];

/// Variables that hold secrets: their values must never be echoed.
const SECRET_KEYS: &[&str] = &[
    "DATABASE_URL",
    "CALLYZER_API_TOKEN",
    "LLM_API_KEY",
    "NOTIFY_TELEGRAM_BOT_TOKEN",
    "NOTIFY_SLACK_WEBHOOK_URL",
];

#[test]
fn the_configuration_parser_reports_errors_and_never_panics_or_echoes_secrets() {
    let env = || {
        let value = prop_oneof![
            hostile_text(),
            Just("https://crm.example.com/0/ServiceModel/x.svc".to_string()),
            Just("http://127.0.0.1:1/".to_string()),
            "-?[0-9]{1,25}",
            Just("true".to_string()),
            Just("0".to_string()),
        ];
        let secret = prop_oneof![
            Just("postgres://u:topsecret@127.0.0.1:5432/db".to_string()),
            Just("topsecret".to_string()),
            Just("https://hooks.slack.com/services/topsecret".to_string()),
            "topsecret[ -~]{0,20}",
            Just("not a url topsecret".to_string()),
        ];
        (
            prop::collection::vec((prop::sample::select(CONFIG_KEYS), value), 0..24),
            prop::collection::vec((prop::sample::select(SECRET_KEYS), secret), 0..5),
        )
    };
    fuzz("config", env, |(plain, secrets)| {
        let map: HashMap<String, String> = plain
            .into_iter()
            .chain(secrets)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let get = |k: &str| map.get(k).cloned();
        match Config::from_lookup(get) {
            Ok(cfg) => assert!(
                !format!("{cfg:?}").contains("topsecret"),
                "Debug of Config shows a secret"
            ),
            Err(e) => {
                assert!(!e.0.is_empty(), "an error with no reason");
                assert!(
                    !e.to_string().contains("topsecret"),
                    "a config error echoes a secret: {e}"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Regressions: inputs the properties above have found or that sit on edges
// ---------------------------------------------------------------------------

#[test]
fn a_timestamp_cut_inside_a_multibyte_character_is_refused_not_a_panic() {
    assert!(CallyzerTimestamp::parse("2026-01-15 10:05:0ą").is_none());
    assert!(CallyzerTimestamp::parse("2026-01-15 10:05:00 +ą").is_none());
    assert!(CallyzerTimestamp::parse("ąąąąąąąąąąąąąąąąąąąąąąą").is_none());
}

#[test]
fn arabic_indic_and_full_width_digits_are_not_taken_for_a_phone_number() {
    assert!(PhoneNumber::from_parts("48", "٦٠١٢٠٢٣٠٣", "48").is_err());
    assert!(PhoneNumber::from_parts("48", "６０１２０２３０３", "48").is_err());
}

#[test]
fn a_number_that_is_only_plus_signs_or_zeros_is_refused() {
    assert!(PhoneNumber::from_parts("48", "+", "48").is_err());
    assert!(PhoneNumber::from_parts("48", "++48601202303", "48").is_err());
    assert!(PhoneNumber::from_parts("", "0000000000", "").is_err());
}

#[test]
fn a_bpmsoft_result_code_too_large_for_an_integer_is_not_success() {
    let text = json!({"SaveWebFormObjectDataResult": "{resultCode:99999999999999999999999,resultMessage:\"x\"}"})
        .to_string();
    let (outcome, _) = bpmsoft::classify_body(&text);
    assert!(
        !matches!(outcome, bpmsoft::Outcome::Success { .. }),
        "{outcome:?}"
    );
}

#[test]
fn a_delivery_whose_call_logs_is_not_an_array_is_reported_not_dropped_silently() {
    let d = parse_delivery(&json!([{"emp_code": "E", "call_logs": {"id": "x"}}]), "48").unwrap();
    assert!(d.records.is_empty());
    assert_eq!(d.problems.len(), 1);
}
