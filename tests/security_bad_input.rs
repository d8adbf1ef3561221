//! Hostile and broken requests through the real HTTP path (Deno → PostgREST →
//! Postgres → worker) for both webhook functions, each with the status it must
//! get, interleaved with valid deliveries that must all be processed exactly
//! once. Requests that a well-behaved client library refuses to send (invalid
//! UTF-8, raw NUL, header injection, smuggling, slow and stalled bodies) go
//! over a raw TCP socket. At the end the logs of everything the suite ran
//! (PostgREST, Deno, the Postgres server) are scanned for the configured
//! secrets and for the full phone numbers the requests carried.
#![allow(clippy::unwrap_used)]
mod common;

use callsync::jobs::callyzer_delivery::{CallyzerDelivery, KIND};
use callsync::jobs::elevenlabs_crm_settings::{register, ElevenLabsCrmSettings};
use callsync::jobs::Handlers;
use common::stack::{Stack, JWT_SECRET};
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "cz-corpus-token-6d1f0c9a8b7e";
const HEADER: &str = "x-callyzer-secret";
const EL_SECRET: &str = "whsec_corpus_5b0e9d2c71aa";

/// The status a request must get; `None`: the client gives up first (a
/// stalled upload) and the server must simply carry on.
type Expect = Option<u16>;

/// One hostile request.
struct Case {
    name: &'static str,
    /// The whole request, bytes on the wire; `{path}` is filled in.
    wire: Vec<u8>,
    /// Send the body in pieces this far apart (slow bodies).
    trickle: Option<Duration>,
    /// Stop after sending this many bytes and wait (stalled bodies).
    stall_after: Option<usize>,
    expect: Expect,
    /// A call id this request carries when it is accepted (must be stored once).
    stores_call: Option<&'static str>,
}

fn request(method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut w = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        w.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("transfer-encoding") || k.eq_ignore_ascii_case("content-length")
    }) {
        w.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    w.push_str("\r\n");
    let mut bytes = w.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn json_ct() -> (&'static str, String) {
    ("Content-Type", "application/json".to_string())
}

fn cz_path(token: &str) -> String {
    format!("/functions/v1/callyzer-webhook?token={token}")
}

fn cz(name: &'static str, body: &[u8], expect: u16) -> Case {
    Case {
        name,
        wire: request("POST", &cz_path(TOKEN), &[json_ct()], body),
        trickle: None,
        stall_after: None,
        expect: Some(expect),
        stores_call: None,
    }
}

fn call(id: &str, number: &str) -> Value {
    json!({"id": id, "client_name": "Jan", "client_country_code": "48", "client_number": number,
           "duration": 61, "call_type": "Outgoing", "call_date": "2026-01-15", "call_time": "10:00:00",
           "note": "", "call_recording_url": "", "crm_status": "",
           "synced_at": "2026-01-15 10:05:00", "modified_at": "2026-01-15 10:05:00"})
}

fn delivery(calls: Vec<Value>) -> Value {
    json!([{"emp_name": "Olga", "emp_code": "SALES-07", "emp_country_code": "48",
            "emp_number": "600100200", "emp_tags": [], "call_logs": calls}])
}

fn el_body(conv: &str) -> String {
    json!({"type": "post_call_transcription", "event_timestamp": chrono::Utc::now().timestamp(),
           "data": {"agent_id": "agent_1", "conversation_id": conv, "status": "done",
                    "transcript": [{"role": "user", "message": "Proszę o kontakt: 512 345 678"}],
                    "metadata": {"phone_call": {"direction": "inbound", "external_number": "+48512345678"}},
                    "analysis": {"call_successful": "success", "transcript_summary": "Chce kurs."}}})
    .to_string()
}

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn el(name: &'static str, body: &[u8], signature: Option<String>, expect: u16) -> Case {
    let mut headers = vec![json_ct()];
    if let Some(s) = signature {
        headers.push(("ElevenLabs-Signature", s));
    }
    Case {
        name,
        wire: request("POST", "/functions/v1/elevenlabs-webhook", &headers, body),
        trickle: None,
        stall_after: None,
        expect: Some(expect),
        stores_call: None,
    }
}

fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

/// The corpus: (request, expected status). Numbers in it are the ones the
/// log scan looks for afterwards.
fn corpus() -> Vec<Case> {
    let now = chrono::Utc::now().timestamp();
    let ok_el = el_body("conv-replayed");
    let ok_sig = sign(EL_SECRET, now, ok_el.as_bytes());
    let big = "x".repeat(10 * 1024 * 1024);
    let valid = delivery(vec![call("cz-valid-shape", "601 202 303")]).to_string();
    let mut cases = vec![
        // --- Callyzer: broken JSON and shapes
        cz("truncated JSON", br#"[{"emp_code":"SALES-07","call_logs":[{"id":"#, 400),
        cz("empty body", b"", 400),
        cz("JSON null", b"null", 400),
        cz("a bare string", br#""hello""#, 400),
        cz("an array of numbers", b"[1,2,3]", 400),
        cz("an object without result", br#"{"emp_code":"SALES-07"}"#, 400),
        cz("arrays nested 10,000 deep", nested(10_000, "").as_bytes(), 400),
        cz(
            "objects nested 3,000 deep inside an employee",
            format!(
                r#"[{{"emp_code":"SALES-07","call_logs":[],"x":{}1{}}}]"#,
                r#"{"a":"#.repeat(3_000),
                "}".repeat(3_000)
            )
            .as_bytes(),
            400,
        ),
        cz("invalid UTF-8", b"[{\"emp_code\":\"\xff\xfe\xfd\",\"call_logs\":[]}]", 400),
        cz("a raw NUL byte in a string", b"[{\"emp_code\":\"a\x00b\",\"call_logs\":[]}]", 400),
        cz("trailing garbage after JSON", format!("{valid}]]").as_bytes(), 400),
        cz("JSON with comments", b"[/* x */{\"call_logs\":[]}]", 400),
        cz("single quotes", b"[{'call_logs':[]}]", 400),
        cz("NaN literal", b"[{\"call_logs\":[],\"n\":NaN}]", 400),
        // --- Callyzer: size
        cz("1 MiB + 1 byte", &vec![b' '; 1024 * 1024 + 1], 413),
        cz("10 MB body", big.as_bytes(), 413),
        Case {
            name: "10 MB chunked body without a length",
            wire: {
                let mut w = request(
                    "POST",
                    &cz_path(TOKEN),
                    &[json_ct(), ("Transfer-Encoding", "chunked".into())],
                    b"",
                );
                for _ in 0..10 {
                    w.extend_from_slice(format!("{:x}\r\n", 1024 * 1024).as_bytes());
                    w.extend_from_slice(&vec![b' '; 1024 * 1024]);
                    w.extend_from_slice(b"\r\n");
                }
                w.extend_from_slice(b"0\r\n\r\n");
                w
            },
            trickle: None,
            stall_after: None,
            expect: Some(413),
            stores_call: None,
        },
        // --- Callyzer: authentication and headers
        Case {
            name: "no token",
            wire: request("POST", "/functions/v1/callyzer-webhook", &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 401)
        },
        Case {
            name: "wrong token",
            wire: request("POST", &cz_path("cz-corpus-token-6d1f0c9a8b7f"), &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 401)
        },
        Case {
            name: "token with a trailing space",
            wire: request("POST", &cz_path(&format!("{TOKEN}%20")), &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 401)
        },
        Case {
            name: "token prefix only",
            wire: request("POST", &cz_path(&TOKEN[..10]), &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 401)
        },
        Case {
            name: "CRLF header injection in the query string",
            wire: request(
                "POST",
                &format!("/functions/v1/callyzer-webhook?token=x%0d%0a{HEADER}:%20{TOKEN}"),
                &[json_ct()],
                valid.as_bytes(),
            ),
            ..cz("", b"", 401)
        },
        Case {
            name: "the secret header twice, the first one wrong",
            wire: request(
                "POST",
                "/functions/v1/callyzer-webhook",
                &[json_ct(), (HEADER, "wrong".into()), (HEADER, TOKEN.into())],
                valid.as_bytes(),
            ),
            ..cz("", b"", 401)
        },
        Case {
            name: "a second token parameter after a wrong one",
            wire: request(
                "POST",
                &format!("/functions/v1/callyzer-webhook?token=wrong&token={TOKEN}"),
                &[json_ct()],
                valid.as_bytes(),
            ),
            ..cz("", b"", 401)
        },
        Case {
            name: "a broken percent escape as the token path segment",
            wire: request(
                "POST",
                "/functions/v1/callyzer-webhook/%E0%A4%A",
                &[json_ct()],
                valid.as_bytes(),
            ),
            ..cz("", b"", 401)
        },
        Case {
            name: "a 60 KB token",
            wire: request("POST", &cz_path(&"t".repeat(60_000)), &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 401)
        },
        Case {
            name: "text/plain content type",
            wire: request(
                "POST",
                &cz_path(TOKEN),
                &[("Content-Type", "text/plain".into())],
                valid.as_bytes(),
            ),
            ..cz("", b"", 415)
        },
        Case {
            name: "no content type",
            wire: request("POST", &cz_path(TOKEN), &[], valid.as_bytes()),
            ..cz("", b"", 415)
        },
        Case {
            name: "GET",
            wire: request("GET", &cz_path(TOKEN), &[], b""),
            ..cz("", b"", 405)
        },
        Case {
            name: "PUT",
            wire: request("PUT", &cz_path(TOKEN), &[json_ct()], valid.as_bytes()),
            ..cz("", b"", 405)
        },
        Case {
            name: "Content-Length and chunked together (smuggling)",
            wire: request(
                "POST",
                &cz_path(TOKEN),
                &[
                    json_ct(),
                    ("Content-Length", "4".into()),
                    ("Transfer-Encoding", "chunked".into()),
                ],
                b"0\r\n\r\nGET /functions/v1/ HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
            ..cz("", b"", 400)
        },
        Case {
            name: "a body shorter than its Content-Length, then silence",
            wire: request(
                "POST",
                &cz_path(TOKEN),
                &[json_ct(), ("Content-Length", "5000".into())],
                valid.as_bytes(),
            ),
            stall_after: Some(usize::MAX),
            expect: None,
            ..cz("", b"", 0)
        },
        // --- Callyzer: odd but valid content, which must be stored
        Case {
            name: "a slow body (trickled over 3 s)",
            wire: request(
                "POST",
                &cz_path(TOKEN),
                &[json_ct()],
                delivery(vec![call("cz-slow-body", "601 202 311")]).to_string().as_bytes(),
            ),
            trickle: Some(Duration::from_millis(3000)),
            stores_call: Some("cz-slow-body"),
            ..cz("", b"", 200)
        },
        Case {
            name: "duplicate keys (the last one wins everywhere)",
            stores_call: Some("cz-dup-last"),
            ..cz(
                "",
                br#"[{"emp_code":"SALES-07","emp_country_code":"48","emp_number":"600100200","call_logs":[{"id":"cz-dup-first","id":"cz-dup-last","client_country_code":"48","client_number":"601202312","duration":5,"call_type":"Incoming","call_date":"2026-01-15","call_time":"10:00:00","modified_at":"2026-01-15 10:05:00"}]}]"#,
                200,
            )
        },
        Case {
            name: "numbers as strings and strings as numbers",
            stores_call: Some("4711"),
            ..cz(
                "",
                br#"[{"emp_code":"SALES-07","emp_country_code":48,"emp_number":600100200,"call_logs":[{"id":4711,"client_country_code":48,"client_number":601202313,"duration":"61","call_type":"Outgoing","call_date":"2026-01-15","call_time":"10:00:00","modified_at":"2026-01-15 10:05:00"}]}]"#,
                200,
            )
        },
        Case {
            name: "SQL-looking strings",
            stores_call: Some("x'); drop table callsync.call; --"),
            ..cz(
                "",
                delivery(vec![{
                    let mut c = call("x'); drop table callsync.call; --", "601 202 314");
                    c["note"] = json!("' or 1=1; select pg_sleep(10); --");
                    c["client_name"] = json!("Robert'); DROP TABLE lead;--");
                    c
                }])
                .to_string()
                .as_bytes(),
                200,
            )
        },
        Case {
            name: "a 900 KB note",
            stores_call: Some("cz-huge-note"),
            ..cz(
                "",
                delivery(vec![{
                    let mut c = call("cz-huge-note", "601 202 315");
                    c["note"] = json!("n".repeat(900 * 1024));
                    c
                }])
                .to_string()
                .as_bytes(),
                200,
            )
        },
        Case {
            name: "an escaped NUL (\\u0000) in a note",
            stores_call: Some("cz-escaped-nul"),
            ..cz(
                "",
                br#"[{"emp_code":"SALES-07","emp_country_code":"48","emp_number":"600100200","call_logs":[{"id":"cz-escaped-nul","client_country_code":"48","client_number":"601202316","duration":5,"call_type":"Incoming","call_date":"2026-01-15","call_time":"10:00:00","modified_at":"2026-01-15 10:05:00","note":"a\u0000b"}]}]"#,
                200,
            )
        },
        Case {
            name: "a lone surrogate (\\ud800) in a name",
            stores_call: Some("cz-lone-surrogate"),
            ..cz(
                "",
                br#"[{"emp_code":"SALES-07","emp_country_code":"48","emp_number":"600100200","call_logs":[{"id":"cz-lone-surrogate","client_name":"\ud800","client_country_code":"48","client_number":"601202317","duration":5,"call_type":"Incoming","call_date":"2026-01-15","call_time":"10:00:00","modified_at":"2026-01-15 10:05:00"}]}]"#,
                200,
            )
        },
        Case {
            name: "a number too large for a double (1e400)",
            stores_call: Some("cz-huge-number"),
            ..cz(
                "",
                br#"[{"emp_code":"SALES-07","emp_country_code":"48","emp_number":"600100200","call_logs":[{"id":"cz-huge-number","client_country_code":"48","client_number":"601202318","duration":1e400,"call_type":"Incoming","call_date":"2026-01-15","call_time":"10:00:00","modified_at":"2026-01-15 10:05:00"}]}]"#,
                200,
            )
        },
        Case {
            name: "a UTF-8 byte order mark before the JSON",
            stores_call: Some("cz-bom"),
            ..cz(
                "",
                &[
                    b"\xef\xbb\xbf".as_slice(),
                    delivery(vec![call("cz-bom", "601 202 319")]).to_string().as_bytes(),
                ]
                .concat(),
                200,
            )
        },
        Case {
            name: "the token in the configured header instead of the URL",
            wire: request(
                "POST",
                "/functions/v1/callyzer-webhook",
                &[json_ct(), (HEADER, TOKEN.into())],
                delivery(vec![call("cz-header-token", "601 202 320")]).to_string().as_bytes(),
            ),
            stores_call: Some("cz-header-token"),
            ..cz("", b"", 200)
        },
        // --- ElevenLabs
        el("no signature", ok_el.as_bytes(), None, 401),
        el(
            "signed with another secret",
            ok_el.as_bytes(),
            Some(sign("whsec_other", now, ok_el.as_bytes())),
            401,
        ),
        el(
            "stale timestamp (1 h old), correctly signed",
            ok_el.as_bytes(),
            Some(sign(EL_SECRET, now - 3600, ok_el.as_bytes())),
            401,
        ),
        el(
            "future timestamp (1 h ahead), correctly signed",
            ok_el.as_bytes(),
            Some(sign(EL_SECRET, now + 3600, ok_el.as_bytes())),
            401,
        ),
        el(
            "a valid signature replayed onto another body",
            el_body("conv-forged").as_bytes(),
            Some(ok_sig.clone()),
            401,
        ),
        el(
            "a valid signature with its timestamp changed",
            ok_el.as_bytes(),
            Some(ok_sig.replacen(&format!("t={now}"), &format!("t={}", now - 1), 1)),
            401,
        ),
        el("header without t", ok_el.as_bytes(), Some(ok_sig.split(',').nth(1).unwrap().to_string()), 401),
        el("t that is not a number", ok_el.as_bytes(), Some(ok_sig.replacen("t=", "t=x", 1)), 401),
        el("a 13-digit t", ok_el.as_bytes(), Some(format!("t=1{now:012},v0=00")), 401),
        el("an empty v0", ok_el.as_bytes(), Some(format!("t={now},v0=")), 401),
        el(
            "10,000 wrong v0 values",
            ok_el.as_bytes(),
            Some(format!("t={now},{}", vec!["v0=00"; 10_000].join(","))),
            401,
        ),
        Case {
            name: "CRLF injection of a second signature header",
            wire: request(
                "POST",
                "/functions/v1/elevenlabs-webhook",
                &[
                    json_ct(),
                    ("ElevenLabs-Signature", format!("t={now},v0=bad\r\nX-Injected: 1")),
                ],
                ok_el.as_bytes(),
            ),
            ..el("", b"", None, 401)
        },
        el("truncated JSON, signed", b"{\"type\":\"post_call", Some(sign(EL_SECRET, now, b"{\"type\":\"post_call")), 400),
        el("an array, signed", b"[]", Some(sign(EL_SECRET, now, b"[]")), 400),
        el("an object without type, signed", b"{\"data\":{}}", Some(sign(EL_SECRET, now, b"{\"data\":{}}")), 400),
        el("a type that is a number, signed", b"{\"type\":5}", Some(sign(EL_SECRET, now, b"{\"type\":5}")), 400),
        el(
            "invalid UTF-8, signed",
            b"{\"type\":\"\xff\"}",
            Some(sign(EL_SECRET, now, b"{\"type\":\"\xff\"}")),
            400,
        ),
        el("10 MB body, signed", big.as_bytes(), Some(sign(EL_SECRET, now, big.as_bytes())), 413),
        Case {
            name: "GET on the ElevenLabs function",
            wire: request("GET", "/functions/v1/elevenlabs-webhook", &[], b""),
            ..el("", b"", None, 405)
        },
    ];
    // ElevenLabs bodies that are odd but valid: stored and analysed.
    for (name, body) in [
        (
            "an escaped NUL in the transcript, signed",
            el_body("conv-nul").replace("Chce kurs.", "Chce\\u0000kurs."),
        ),
        (
            "duplicate type keys, signed",
            el_body("conv-dup").replacen(
                "{\"type\":\"post_call_transcription\"",
                "{\"type\":\"x\",\"type\":\"post_call_transcription\"",
                1,
            ),
        ),
        (
            "SQL-looking conversation id, signed",
            el_body("conv-'; drop table callsync.call; --"),
        ),
        (
            "objects nested 3,000 deep in the metadata, signed",
            el_body("conv-deep").replacen(
                "\"status\":\"done\"",
                &format!(
                    "\"status\":\"done\",\"deep\":{}1{}",
                    r#"{"a":"#.repeat(3_000),
                    "}".repeat(3_000)
                ),
                1,
            ),
        ),
    ] {
        let sig = sign(EL_SECRET, now, body.as_bytes());
        let mut c = el(name, body.as_bytes(), Some(sig), 200);
        if name.contains("nested") {
            c.expect = Some(400);
        }
        cases.push(c);
    }
    // the same valid request twice: stored once
    cases.push(el(
        "a valid request",
        ok_el.as_bytes(),
        Some(ok_sig.clone()),
        200,
    ));
    cases.push(el(
        "the same request replayed",
        ok_el.as_bytes(),
        Some(ok_sig),
        200,
    ));
    cases
}

/// Sends `case` over a raw socket; returns the status, or `None` when the
/// client gave up waiting.
async fn send_raw(addr: &str, case: &Case) -> Option<u16> {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head_end = case
        .wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(case.wire.len());
    if let Some(total) = case.trickle {
        sock.write_all(&case.wire[..head_end]).await.unwrap();
        let body = &case.wire[head_end..];
        let pieces = 30;
        let step = body.len().div_ceil(pieces);
        for chunk in body.chunks(step.max(1)) {
            tokio::time::sleep(total / pieces as u32).await;
            sock.write_all(chunk).await.unwrap();
        }
    } else if case.stall_after.is_some() {
        sock.write_all(&case.wire).await.unwrap();
        // the rest of the declared body never comes; a client gives up
        let mut buf = [0u8; 64];
        return match tokio::time::timeout(Duration::from_secs(3), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 12 => std::str::from_utf8(&buf[9..12]).ok()?.parse().ok(),
            _ => None,
        };
    } else {
        // the server may answer (413) and close before the upload ends
        let _ = sock.write_all(&case.wire).await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), sock.read_to_end(&mut out)).await;
    std::str::from_utf8(out.get(9..12)?).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_status_and_valid_ones_between_them_are_all_processed() {
    let db = TestDb::new().await;
    db.exec(
        "insert into callsync.team (name) values ('Team A');
         insert into callsync.advisor (name, emp_code, country_code, phone_number, phone_e164, team_id)
             values ('Olga', 'SALES-07', '48', '600100200', '+48600100200', 1);",
    )
    .await;
    let stack = Stack::start(
        db,
        &[
            ("CALLYZER_WEBHOOK_TOKEN", TOKEN),
            ("CALLYZER_WEBHOOK_HEADER", HEADER),
            ("ELEVENLABS_WEBHOOK_SECRET", EL_SECRET),
        ],
    )
    .await;
    let settings = ElevenLabsCrmSettings::from_lookup(&|_: &str| None).unwrap();
    let handlers = register(Handlers::new(), &settings, &stack.db.worker_pool)
        .register(KIND, CallyzerDelivery::new(stack.db.worker_pool.clone()));
    let worker = RunningWorker::spawn(&stack.db, handlers, test_options("corpus"));
    let addr = stack
        .functions_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();

    let cases = corpus();
    let mut wrong = Vec::new();
    let mut expected_calls: Vec<String> = Vec::new();
    let mut valid_sent = 0;
    for (i, case) in cases.iter().enumerate() {
        let started = Instant::now();
        let got = send_raw(&addr, case).await;
        if got != case.expect {
            wrong.push(format!(
                "{:>2} {}: expected {:?}, got {:?}",
                i + 1,
                case.name,
                case.expect,
                got
            ));
        }
        println!(
            "corpus {:>2} {:<58} expect {:<9} got {:<9} {:>5} ms",
            i + 1,
            case.name,
            format!("{:?}", case.expect),
            format!("{got:?}"),
            started.elapsed().as_millis()
        );
        if let (Some(200), Some(id)) = (got, case.stores_call) {
            expected_calls.push(id.to_string());
        }
        // a valid delivery after every hostile request
        let id = format!("cz-interleaved-{i}");
        let res = stack
            .http
            .post(format!(
                "{}/callyzer-webhook?token={TOKEN}",
                stack.functions_url
            ))
            .json(&delivery(vec![call(&id, &format!("601 300 {:03}", i))]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "valid delivery after {}", case.name);
        expected_calls.push(id);
        let conv = format!("conv-interleaved-{i}");
        let body = el_body(&conv);
        let res = stack
            .http
            .post(format!("{}/elevenlabs-webhook", stack.functions_url))
            .header("Content-Type", "application/json")
            .header(
                "ElevenLabs-Signature",
                sign(EL_SECRET, chrono::Utc::now().timestamp(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "valid ElevenLabs event after {}",
            case.name
        );
        valid_sent += 1;
    }

    // every accepted request is processed: no event left unprocessed
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = stack.db.pool.get().await.unwrap();
        let left = c
            .query(
                "select e.id, e.source, j.state::text, j.attempt, j.last_error
                 from callsync.webhook_event e left join callsync.job j on j.id = e.job_id
                 where e.status = 'received'",
                &[],
            )
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        let stuck: Vec<String> = left
            .iter()
            .filter(|r| {
                matches!(
                    r.get::<_, Option<String>>(2).as_deref(),
                    Some("discarded" | "cancelled") | None
                )
            })
            .map(|r| {
                format!(
                    "event {} ({}): job {:?} after {:?} attempts: {:?}",
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, Option<String>>(2),
                    r.get::<_, Option<i32>>(3),
                    r.get::<_, Option<String>>(4)
                )
            })
            .collect();
        assert!(
            stuck.is_empty() && Instant::now() < deadline,
            "stored events that will never be processed: {stuck:?} ({} left)",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;

    let c = stack.db.pool.get().await.unwrap();
    let stored: Vec<String> = c
        .query("select id from callsync.call order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut missing = Vec::new();
    for id in &expected_calls {
        if !stored.contains(id) {
            missing.push(id.clone());
        }
    }
    let failed: Vec<(i64, String, Option<String>)> = c
        .query(
            "select id, source, error from callsync.webhook_event where status = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let stuck: i64 = stack
        .db
        .scalar("select count(*) from callsync.job where state not in ('completed')")
        .await;
    let analysed: i64 = stack
        .db
        .scalar("select count(*) from callsync.call_analysis a join callsync.elevenlabs_event e on e.webhook_event_id = a.event_id where e.conversation_id like 'conv-interleaved-%'")
        .await;
    let replays: i64 = stack
        .db
        .scalar("select count(*) from callsync.elevenlabs_event where conversation_id = 'conv-replayed'")
        .await;
    println!(
        "corpus: {} hostile requests, {} with the wrong status; {} valid pairs interleaved; {} calls expected, {} missing; {} events failed; {} jobs not completed",
        cases.len(),
        wrong.len(),
        valid_sent,
        expected_calls.len(),
        missing.len(),
        failed.len(),
        stuck
    );
    assert!(cases.len() >= 40, "the corpus has {} requests", cases.len());
    assert!(wrong.is_empty(), "wrong statuses:\n{}", wrong.join("\n"));
    assert!(missing.is_empty(), "accepted but never stored: {missing:?}");
    assert!(failed.is_empty(), "events that failed: {failed:?}");
    assert_eq!(stuck, 0, "jobs left unfinished");
    assert_eq!(
        analysed, valid_sent as i64,
        "every valid ElevenLabs event analysed once"
    );
    assert_eq!(replays, 1, "a replayed request is stored once");

    // secrets hygiene over everything this suite ran
    common_hygiene::assert_clean(
        &[
            ("PostgREST and Deno", stack.logs()),
            ("Postgres server", server_log(&stack.db.cluster)),
        ],
        &[
            TOKEN,
            EL_SECRET,
            JWT_SECRET,
            &stack.service_key,
            &stack.anon_key,
        ],
        &[
            "601202303",
            "601202311",
            "601202316",
            "512345678",
            "600100200",
            "601300001",
        ],
    );
}

fn server_log(cluster: &Cluster) -> String {
    std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default()
}

#[path = "proof/hygiene.rs"]
mod common_hygiene;

#[test]
#[should_panic(expected = "secrets or phone numbers in the logs")]
fn the_log_scan_catches_a_spaced_phone_number() {
    common_hygiene::assert_clean(
        &[("worker", "calling +48 601-202-303 now".to_string())],
        &[TOKEN],
        &["601202303"],
    );
}

#[test]
#[should_panic(expected = "a secret at byte")]
fn the_log_scan_catches_a_token() {
    common_hygiene::assert_clean(
        &[("deno", format!("GET /callyzer-webhook?token={TOKEN}"))],
        &[TOKEN],
        &[],
    );
}
