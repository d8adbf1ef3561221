//! One Callyzer call-log record, parsed, and a whole delivery (an array of
//! employees with `call_logs`, or an object with such an array in `result`).
//! A bad record is reported with its position and id and does not stop the
//! others. Zone-less date-times stay zone-less here: the database reads them in
//! the account time zone (setting `callyzer.account_time_zone`), so this file
//! only checks their format. Not here: matching, storing, HTTP.
use super::call_type::CallType;
use super::phone_number::PhoneNumber;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// A timestamp Callyzer sent as `YYYY-MM-DD HH:MM:SS[ zone]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallyzerTimestamp {
    /// As sent.
    pub raw: String,
    /// The wall-clock part.
    pub local: NaiveDateTime,
    /// Seconds east of UTC when the text carried a zone we can read; `None`
    /// means "in the account time zone".
    pub offset_s: Option<i32>,
}

impl CallyzerTimestamp {
    /// Parses `2026-01-01 00:20:03`, `… +03`, `… +05:30`, `… UTC`, `… IST`
    /// (Callyzer is Indian: India Standard Time). Other zone names fall back to
    /// the account time zone. A `T` separator is accepted.
    pub fn parse(raw: &str) -> Option<Self> {
        let text = raw.trim();
        let (head, zone) = (text.get(..19)?, text.get(19..)?);
        let local =
            NaiveDateTime::parse_from_str(&head.replacen('T', " ", 1), "%Y-%m-%d %H:%M:%S").ok()?;
        let zone = zone.trim();
        let offset_s = match zone {
            "" => None,
            "Z" | "UTC" | "GMT" => Some(0),
            "IST" => Some(5 * 3600 + 30 * 60),
            z if z.starts_with('+') || z.starts_with('-') => Some(parse_offset(z)?),
            _ => None,
        };
        Some(CallyzerTimestamp {
            raw: raw.to_string(),
            local,
            offset_s,
        })
    }
}

/// `+03`, `+0300`, `+03:00`, `-05:30` → seconds east of UTC.
fn parse_offset(z: &str) -> Option<i32> {
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// One call as the rest of the service sees it.
#[derive(Clone)]
pub struct CallRecord {
    /// Callyzer's call id: the idempotency key.
    pub id: String,
    /// The employee (advisor) who made or took the call.
    pub emp_code: Option<String>,
    /// The employee's name as Callyzer knows it.
    pub emp_name: Option<String>,
    /// The employee's number, split as Callyzer sends it.
    pub emp_country_code: Option<String>,
    /// The employee's number, split as Callyzer sends it.
    pub emp_number: Option<String>,
    /// The employee's number in E.164, when it could be read.
    pub emp_phone: Option<PhoneNumber>,
    /// Callyzer's employee tags.
    pub emp_tags: Vec<String>,
    /// The counterpart's name from the phone book.
    pub client_name: Option<String>,
    /// The counterpart's number, as sent.
    pub client_country_code: Option<String>,
    /// The counterpart's number, as sent.
    pub client_number: Option<String>,
    /// The counterpart's number in E.164; `None` when it is not a number
    /// (hidden caller, garbage): the call is kept, it just cannot match a lead.
    pub client_phone: Option<PhoneNumber>,
    /// Seconds.
    pub duration_s: i32,
    /// Raw type with its label.
    pub call_type: CallType,
    /// Checked `YYYY-MM-DD`, zone-less.
    pub call_date: NaiveDate,
    /// Checked `HH:MM:SS`, zone-less.
    pub call_time: NaiveTime,
    /// Free text typed in the app.
    pub note: Option<String>,
    /// Recording on Callyzer's storage; may arrive in a later copy.
    pub recording_url: Option<String>,
    /// Callyzer's own lead status.
    pub crm_status: Option<String>,
    /// When the handset uploaded the call.
    pub synced_at: Option<CallyzerTimestamp>,
    /// Decides which copy of a call wins.
    pub modified_at: Option<CallyzerTimestamp>,
    /// The record exactly as sent.
    pub raw: Value,
}

/// Numbers and names stay out of logs.
impl fmt::Debug for CallRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRecord")
            .field("id", &self.id)
            .field("emp_code", &self.emp_code)
            .field("client_phone", &self.client_phone)
            .field("call_type", &self.call_type)
            .field("call_date", &self.call_date)
            .finish_non_exhaustive()
    }
}

/// A record (or employee entry) the parser refused or had to doubt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordProblem {
    /// Position in the delivery: employee index and, for a call, its index in `call_logs`.
    pub employee: usize,
    /// Index in the employee's `call_logs`; `None` for a problem with the employee entry.
    pub call: Option<usize>,
    /// The call id, when the record had one.
    pub call_id: Option<String>,
    /// What is wrong (never the phone number itself).
    pub error: String,
    /// `true`: the call was stored anyway (a warning); `false`: it was skipped.
    pub stored: bool,
}

/// Everything one delivery held.
#[derive(Debug, Default)]
pub struct Delivery {
    /// The calls that parsed.
    pub records: Vec<CallRecord>,
    /// What was refused or doubted, with where it was.
    pub problems: Vec<RecordProblem>,
}

/// The delivery as a whole is not Callyzer's shape.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("delivery is not an array of employees (or an object with a `result` array): {0}")]
pub struct DeliveryShapeError(pub &'static str);

/// Parses a whole delivery.
///
/// # Errors
/// [`DeliveryShapeError`] only when the outer shape is wrong; bad employees and
/// bad records become [`RecordProblem`]s next to the good records.
pub fn parse_delivery(body: &Value, default_country: &str) -> Result<Delivery, DeliveryShapeError> {
    let employees = match body {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("result") {
            Some(Value::Array(items)) => items,
            _ => return Err(DeliveryShapeError("an object without a `result` array")),
        },
        _ => return Err(DeliveryShapeError("neither an array nor an object")),
    };
    let mut delivery = Delivery::default();
    for (e, employee) in employees.iter().enumerate() {
        let Some(emp) = employee.as_object() else {
            delivery.problems.push(problem(
                e,
                None,
                None,
                "employee entry is not an object",
                false,
            ));
            continue;
        };
        let Some(logs) = emp.get("call_logs").and_then(Value::as_array) else {
            delivery.problems.push(problem(
                e,
                None,
                None,
                "employee entry has no `call_logs` array",
                false,
            ));
            continue;
        };
        for (c, log) in logs.iter().enumerate() {
            match parse_record(emp, log, default_country) {
                Ok((record, warnings)) => {
                    for w in warnings {
                        delivery.problems.push(problem(
                            e,
                            Some(c),
                            Some(record.id.clone()),
                            &w,
                            true,
                        ));
                    }
                    delivery.records.push(record);
                }
                Err((id, error)) => delivery
                    .problems
                    .push(problem(e, Some(c), id, &error, false)),
            }
        }
    }
    Ok(delivery)
}

fn problem(
    employee: usize,
    call: Option<usize>,
    call_id: Option<String>,
    error: &str,
    stored: bool,
) -> RecordProblem {
    RecordProblem {
        employee,
        call,
        call_id,
        error: error.to_string(),
        stored,
    }
}

/// A non-empty trimmed string; numbers are accepted as their text (ids, codes).
fn text(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses one call-log record of `emp`. Returns the record and its warnings,
/// or the record's id (if any) and why it was refused.
pub fn parse_record(
    emp: &Map<String, Value>,
    log: &Value,
    default_country: &str,
) -> Result<(CallRecord, Vec<String>), (Option<String>, String)> {
    let Some(o) = log.as_object() else {
        return Err((None, "call record is not an object".into()));
    };
    let id = text(o, "id").ok_or((None, "call record has no `id`".to_string()))?;
    let fail = |e: String| (Some(id.clone()), e);
    let mut warnings = Vec::new();

    let emp_code = text(emp, "emp_code");
    let emp_country_code = text(emp, "emp_country_code");
    let emp_number = text(emp, "emp_number");
    let emp_phone = emp_number.as_deref().and_then(|n| {
        PhoneNumber::from_parts(
            emp_country_code.as_deref().unwrap_or(""),
            n,
            default_country,
        )
        .ok()
    });
    if emp_code.is_none() && emp_phone.is_none() {
        return Err(fail(
            "employee has neither an `emp_code` nor a readable `emp_number`".into(),
        ));
    }
    let emp_tags = emp
        .get("emp_tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let call_type = CallType::parse(o.get("call_type").and_then(Value::as_str).unwrap_or(""))
        .map_err(|e| fail(e.to_string()))?;
    let duration_s = match o.get("duration") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= 0)
            .ok_or_else(|| fail("`duration` is not a whole number of seconds".into()))?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|d| *d >= 0)
            .ok_or_else(|| fail("`duration` is not a whole number of seconds".into()))?,
        Some(_) => return Err(fail("`duration` is not a whole number of seconds".into())),
    };
    let date_raw = o
        .get("call_date")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let call_date = NaiveDate::parse_from_str(date_raw, "%Y-%m-%d")
        .ok()
        .filter(|_| date_raw.len() == 10)
        .ok_or_else(|| fail("`call_date` is not a YYYY-MM-DD date".into()))?;
    let time_raw = o
        .get("call_time")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let call_time = NaiveTime::parse_from_str(time_raw, "%H:%M:%S")
        .ok()
        .filter(|_| time_raw.len() == 8)
        .ok_or_else(|| fail("`call_time` is not an HH:MM:SS time".into()))?;

    let client_country_code = text(o, "client_country_code");
    let client_number = text(o, "client_number");
    let client_phone = match client_number.as_deref() {
        None => {
            warnings.push("`client_number` is empty; the call cannot match a lead".to_string());
            None
        }
        Some(n) => match PhoneNumber::from_parts(
            client_country_code.as_deref().unwrap_or(""),
            n,
            default_country,
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                warnings.push(format!(
                    "`client_number` is not a phone number ({e}); the call cannot match a lead"
                ));
                None
            }
        },
    };
    let stamp = |key: &str, warnings: &mut Vec<String>| {
        let raw = text(o, key)?;
        let parsed = CallyzerTimestamp::parse(&raw);
        if parsed.is_none() {
            warnings.push(format!("`{key}` is not YYYY-MM-DD HH:MM:SS; ignored"));
        }
        parsed
    };
    let synced_at = stamp("synced_at", &mut warnings);
    let modified_at = stamp("modified_at", &mut warnings);

    Ok((
        CallRecord {
            id,
            emp_code,
            emp_name: text(emp, "emp_name"),
            emp_country_code,
            emp_number,
            emp_phone,
            emp_tags,
            client_name: text(o, "client_name"),
            client_country_code,
            client_number,
            client_phone,
            duration_s,
            call_type,
            call_date,
            call_time,
            note: text(o, "note"),
            recording_url: text(o, "call_recording_url"),
            crm_status: text(o, "crm_status"),
            synced_at,
            modified_at,
            raw: log.clone(),
        },
        warnings,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn emp() -> Value {
        json!({"emp_name": "Olga", "emp_code": "SALES-07", "emp_country_code": "48", "emp_number": "600100200",
               "emp_tags": ["sales"], "call_logs": []})
    }

    fn log(overrides: Value) -> Value {
        let mut l = json!({"id": "cz-1", "client_name": "", "client_country_code": "48", "client_number": "601 202 303",
            "duration": 184, "call_type": "Outgoing", "call_date": "2026-01-01", "call_time": "00:12:40",
            "note": "", "call_recording_url": "", "synced_at": "2026-01-01 00:20:03", "modified_at": "2026-01-01 00:20:03"});
        if let (Some(l), Some(o)) = (l.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                l.insert(k.clone(), v.clone());
            }
        }
        l
    }

    fn delivery(logs: Vec<Value>) -> Delivery {
        let mut e = emp();
        e["call_logs"] = Value::Array(logs);
        parse_delivery(&json!([e]), "48").unwrap()
    }

    #[test]
    fn a_good_record_parses_with_e164_numbers_and_empty_strings_as_none() {
        let d = delivery(vec![log(json!({}))]);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let r = &d.records[0];
        assert_eq!(r.client_phone.as_ref().unwrap().as_str(), "+48601202303");
        assert_eq!(r.emp_phone.as_ref().unwrap().as_str(), "+48600100200");
        assert_eq!(r.recording_url, None);
        assert_eq!(r.duration_s, 184);
        assert_eq!(r.modified_at.as_ref().unwrap().offset_s, None);
    }

    #[test]
    fn a_record_without_an_id_is_refused_and_its_neighbour_kept() {
        let d = delivery(vec![log(json!({"id": null})), log(json!({"id": "cz-2"}))]);
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.records[0].id, "cz-2");
        assert_eq!(d.problems.len(), 1);
        assert!(!d.problems[0].stored);
        assert_eq!(d.problems[0].call, Some(0));
    }

    #[test]
    fn a_date_in_a_wrong_format_is_refused_with_the_id() {
        let d = delivery(vec![log(json!({"call_date": "01/02/2026"}))]);
        assert!(d.records.is_empty());
        assert_eq!(d.problems[0].call_id.as_deref(), Some("cz-1"));
        assert!(d.problems[0].error.contains("call_date"));
    }

    #[test]
    fn an_impossible_date_is_refused() {
        let d = delivery(vec![log(json!({"call_date": "2026-02-30"}))]);
        assert!(d.records.is_empty());
    }

    #[test]
    fn an_unparseable_client_number_is_kept_with_a_warning() {
        let d = delivery(vec![log(json!({"client_number": "Private number"}))]);
        assert_eq!(d.records.len(), 1);
        assert!(d.records[0].client_phone.is_none());
        assert!(d.problems[0].stored);
        assert!(
            !d.problems[0].error.contains("Private"),
            "no number in the log"
        );
    }

    #[test]
    fn an_unknown_call_type_is_kept_raw() {
        let d = delivery(vec![log(json!({"call_type": "Voicemail"}))]);
        assert_eq!(d.records[0].call_type, CallType::Other("Voicemail".into()));
        assert!(d.problems.is_empty());
    }

    #[test]
    fn a_negative_duration_is_refused() {
        let d = delivery(vec![log(json!({"duration": -3}))]);
        assert!(d.records.is_empty());
    }

    #[test]
    fn an_employee_without_call_logs_is_reported_and_others_parsed() {
        let mut good = emp();
        good["call_logs"] = json!([log(json!({}))]);
        let d = parse_delivery(&json!([{"emp_code": "X"}, good]), "48").unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.problems[0].employee, 0);
        assert_eq!(d.problems[0].call, None);
    }

    #[test]
    fn an_object_with_a_result_array_is_accepted_and_other_shapes_are_not() {
        let mut e = emp();
        e["call_logs"] = json!([log(json!({}))]);
        assert_eq!(
            parse_delivery(&json!({"result": [e]}), "48")
                .unwrap()
                .records
                .len(),
            1
        );
        assert!(parse_delivery(&json!({"hello": 1}), "48").is_err());
        assert!(parse_delivery(&json!("x"), "48").is_err());
    }

    #[test]
    fn timestamps_read_offsets_and_zone_names() {
        let t = |s| CallyzerTimestamp::parse(s).and_then(|t| t.offset_s);
        assert_eq!(t("2026-01-01 00:20:03 +03"), Some(10800));
        assert_eq!(t("2026-01-01 00:20:03 -05:30"), Some(-19800));
        assert_eq!(t("2026-01-01 00:20:03 IST"), Some(19800));
        assert_eq!(t("2026-01-01T00:20:03Z"), Some(0));
        assert_eq!(t("2026-01-01 00:20:03"), None);
        assert!(CallyzerTimestamp::parse("yesterday").is_none());
    }

    #[test]
    fn debug_does_not_print_names_or_full_numbers() {
        let d = delivery(vec![log(json!({"client_name": "Jan Kowalski"}))]);
        let text = format!("{:?}", d.records[0]);
        assert!(!text.contains("Kowalski"));
        assert!(!text.contains("601202303"));
    }
}
