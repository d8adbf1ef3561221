//! The simulated sales floor: advisors (Callyzer employees) in two teams, their
//! leads with Polish and Belarusian phone numbers, and the calls they make.
//! Pure and seeded: the same seed gives the same advisors and leads, so a
//! restarted simulator matches the rows it wrote to the database before.
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// One Callyzer employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisor {
    pub name: String,
    pub emp_code: String,
    /// Calling code without `+`, as Callyzer splits it (`48`, `375`).
    pub country_code: String,
    /// The national number, as Callyzer splits it.
    pub number: String,
    pub team: String,
}

/// One lead and the phone number it was typed in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub name: String,
    /// The owning advisor.
    pub emp_code: String,
    /// The phone as a CRM user typed it (`601 202 303`, `+375 29 123 45 67`).
    pub raw_phone: String,
    /// How a handset reports the same number: (country code field, number field).
    pub handset: (String, String),
}

/// The advisors and leads of one simulation.
#[derive(Debug, Clone)]
pub struct World {
    pub advisors: Vec<Advisor>,
    pub leads: Vec<Lead>,
}

const TEAMS: [&str; 2] = ["Demo team Warszawa", "Demo team Kraków"];
const PL_FIRST: [&str; 16] = [
    "Anna",
    "Katarzyna",
    "Magdalena",
    "Agnieszka",
    "Joanna",
    "Ewa",
    "Marta",
    "Zofia",
    "Tomasz",
    "Paweł",
    "Michał",
    "Krzysztof",
    "Marek",
    "Łukasz",
    "Jakub",
    "Wojciech",
];
const PL_LAST: [(&str, &str); 12] = [
    ("Nowak", "Nowak"),
    ("Kowalski", "Kowalska"),
    ("Wiśniewski", "Wiśniewska"),
    ("Wójcik", "Wójcik"),
    ("Kamiński", "Kamińska"),
    ("Lewandowski", "Lewandowska"),
    ("Zieliński", "Zielińska"),
    ("Szymański", "Szymańska"),
    ("Woźniak", "Woźniak"),
    ("Dąbrowski", "Dąbrowska"),
    ("Kozłowski", "Kozłowska"),
    ("Mazur", "Mazur"),
];
const BY_NAMES: [&str; 10] = [
    "Иван Соколов",
    "Алена Ковалёва",
    "Дмитрий Новик",
    "Ольга Петрова",
    "Siarhei Kazlou",
    "Volha Ivanova",
    "Andrei Marozau",
    "Наталья Жук",
    "Павел Климович",
    "Yuliya Savitskaya",
];
const COMPANIES: [&str; 6] = [
    "Firma Alfa sp. z o.o.",
    "Beta Logistyka S.A.",
    "Gamma Edukacja",
    "ООО «Минск Софт»",
    "Delta Meble s.c.",
    "Omega Travel",
];
const NOTES: [&str; 6] = [
    "Oddzwonić po 18:00",
    "Zainteresowany kursem, wysłać ofertę",
    "Prosi o kontakt mailowy",
    "Nie ma teraz czasu",
    "Перезвонить завтра",
    "Umówione spotkanie w czwartek",
];

/// Callyzer call types and how often each occurs.
const CALL_TYPES: [(&str, u32); 4] = [
    ("Outgoing", 45),
    ("Incoming", 30),
    ("Missed", 18),
    ("Rejected", 7),
];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn female(first: &str) -> bool {
    first.ends_with('a')
}

fn pl_person(rng: &mut fastrand::Rng) -> String {
    let first = *pick(rng, &PL_FIRST);
    let (m, f) = *pick(rng, &PL_LAST);
    format!("{first} {}", if female(first) { f } else { m })
}

/// A Polish mobile number: 9 digits starting 5, 6, 7 or 8.
fn pl_mobile(rng: &mut fastrand::Rng) -> String {
    format!(
        "{}{:08}",
        pick(rng, &['5', '6', '7', '8']),
        rng.u32(..100_000_000)
    )
}

/// A Belarusian mobile number: operator code 25, 29, 33 or 44 and 7 digits.
fn by_mobile(rng: &mut fastrand::Rng) -> String {
    format!(
        "{}{:07}",
        pick(rng, &["25", "29", "33", "44"]),
        rng.u32(..10_000_000)
    )
}

fn spaced(digits: &str) -> String {
    // 601202303 -> "601 202 303"
    digits
        .as_bytes()
        .chunks(3)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl World {
    /// The seed data's three advisors and leads (`supabase/seed.sql`), plus
    /// `extra_advisors` generated advisors and `leads` generated leads.
    pub fn generate(seed: u64, extra_advisors: usize, leads: usize) -> World {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut advisors = vec![
            advisor("Olga Nowak", "SALES-07", "48", "600100200", TEAMS[0]),
            advisor("Piotr Wiśniewski", "SALES-08", "48", "600100201", TEAMS[0]),
            advisor("Basia Zielińska", "SALES-20", "48", "600100202", TEAMS[1]),
        ];
        for i in 0..extra_advisors {
            let belarusian = i % 3 == 2;
            let (name, cc, number) = if belarusian {
                (
                    pick(&mut rng, &BY_NAMES).to_string(),
                    "375",
                    by_mobile(&mut rng),
                )
            } else {
                (pl_person(&mut rng), "48", pl_mobile(&mut rng))
            };
            let team = TEAMS[i % TEAMS.len()];
            advisors.push(advisor(
                &name,
                &format!("SIM-{:02}", i + 1),
                cc,
                &number,
                team,
            ));
        }
        let mut out = vec![
            lead("Jan Kowalski", "SALES-07", "601 202 303", "48", "601202303"),
            lead("Anna Maj", "SALES-08", "0602-000-000", "48", "602000000"),
            lead(
                "Firma Alfa sp. z o.o.",
                "SALES-20",
                "+48 12 345 67 89",
                "48",
                "123456789",
            ),
        ];
        let mut names: std::collections::HashSet<String> =
            out.iter().map(|l| l.name.clone()).collect();
        while out.len() < leads + 3 {
            let owner = pick(&mut rng, &advisors).emp_code.clone();
            let roll = rng.u32(..100);
            let (base, raw, handset) = if roll < 65 {
                let n = pl_mobile(&mut rng);
                let raw = match rng.u32(..3) {
                    0 => spaced(&n),
                    1 => format!("+48 {}", spaced(&n)),
                    _ => n.clone(),
                };
                (pl_person(&mut rng), raw, ("48".to_string(), n))
            } else if roll < 92 {
                let n = by_mobile(&mut rng);
                let raw = format!("+375 {} {}", &n[..2], spaced(&n[2..]));
                (
                    pick(&mut rng, &BY_NAMES).to_string(),
                    raw,
                    ("375".to_string(), n),
                )
            } else {
                let n = pl_mobile(&mut rng);
                (
                    pick(&mut rng, &COMPANIES).to_string(),
                    format!("+48{n}"),
                    ("48".to_string(), n),
                )
            };
            let mut name = base.clone();
            let mut k = 2;
            while names.contains(&name) {
                name = format!("{base} ({k})");
                k += 1;
            }
            names.insert(name.clone());
            out.push(Lead {
                name,
                emp_code: owner,
                raw_phone: raw,
                handset,
            });
        }
        World {
            advisors,
            leads: out,
        }
    }
}

fn advisor(name: &str, emp_code: &str, cc: &str, number: &str, team: &str) -> Advisor {
    Advisor {
        name: name.into(),
        emp_code: emp_code.into(),
        country_code: cc.into(),
        number: number.into(),
        team: team.into(),
    }
}

fn lead(name: &str, emp_code: &str, raw: &str, cc: &str, number: &str) -> Lead {
    Lead {
        name: name.into(),
        emp_code: emp_code.into(),
        raw_phone: raw.into(),
        handset: (cc.into(), number.into()),
    }
}

/// One call as Callyzer stores it; the simulator keeps the newest copy.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCall {
    pub id: String,
    /// Index into [`World::advisors`].
    pub advisor: usize,
    pub client_name: String,
    pub client_country_code: String,
    pub client_number: String,
    pub duration_s: u32,
    pub call_type: &'static str,
    pub called_at: DateTime<Utc>,
    pub note: String,
    /// Empty until the recording is uploaded.
    pub recording_url: String,
    pub synced_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    /// True when the first copy lacks a recording that a later copy brings.
    pub late_recording: bool,
    /// True when the client number belongs to a lead.
    pub known_client: bool,
}

/// Makes calls for a [`World`].
pub struct CallFactory {
    rng: fastrand::Rng,
    run_id: String,
    next: u64,
    /// Where recordings are served (`…/recordings/<id>.wav`).
    pub recording_base: String,
    /// Share of calls (0–100) to numbers no lead has.
    pub unknown_percent: u32,
}

impl CallFactory {
    /// `run_id` keeps call ids unique across simulator runs on the same database.
    pub fn new(seed: u64, run_id: &str, recording_base: &str) -> Self {
        CallFactory {
            rng: fastrand::Rng::with_seed(seed ^ 0x5EED_CA11),
            run_id: run_id.to_string(),
            next: 0,
            recording_base: recording_base.trim_end_matches('/').to_string(),
            unknown_percent: 30,
        }
    }

    /// A call that ended at `ended_at` and reached Callyzer's cloud at `synced_at`.
    pub fn call(
        &mut self,
        world: &World,
        ended_at: DateTime<Utc>,
        synced_at: DateTime<Utc>,
    ) -> SimCall {
        self.next += 1;
        let id = format!("sim-{}-{:06}", self.run_id, self.next);
        let rng = &mut self.rng;
        let unknown = rng.u32(..100) < self.unknown_percent;
        let (advisor, client_name, cc, number) = if unknown {
            let adv = rng.usize(..world.advisors.len());
            let (cc, n) = match rng.u32(..20) {
                0 => (String::new(), "Nieznany".to_string()), // hidden caller id: no number at all
                1..=12 => ("48".to_string(), pl_mobile(rng)),
                13..=14 => (String::new(), format!("0{}", pl_mobile(rng))), // stored with a trunk 0
                _ => ("375".to_string(), by_mobile(rng)),
            };
            (adv, String::new(), cc, n)
        } else {
            let lead = pick(rng, &world.leads);
            // the owner makes most calls to a lead, a colleague some
            let adv = if rng.u32(..100) < 80 {
                world
                    .advisors
                    .iter()
                    .position(|a| a.emp_code == lead.emp_code)
                    .unwrap_or(0)
            } else {
                rng.usize(..world.advisors.len())
            };
            let (cc, n) = lead.handset.clone();
            // some handsets keep the number international, without the split
            let (cc, n) = if rng.u32(..10) == 0 {
                (String::new(), format!("+{cc}{n}"))
            } else {
                (cc, n)
            };
            let name = if rng.bool() {
                lead.name.clone()
            } else {
                String::new()
            };
            (adv, name, cc, n)
        };
        let total: u32 = CALL_TYPES.iter().map(|(_, w)| w).sum();
        let mut roll = rng.u32(..total);
        let mut call_type = CALL_TYPES[0].0;
        for (t, w) in CALL_TYPES {
            if roll < w {
                call_type = t;
                break;
            }
            roll -= w;
        }
        let answered = matches!(call_type, "Outgoing" | "Incoming") && rng.u32(..100) < 85;
        let duration_s = if answered {
            // mostly short, a long tail: 5 s to about 20 min
            let x = rng.f64();
            (5.0 + 90.0 * (-(1.0 - x).ln())).min(1200.0) as u32
        } else {
            0
        };
        let has_recording = duration_s > 0 && rng.u32(..100) < 60;
        let late_recording = has_recording && rng.bool();
        let note = if rng.u32(..100) < 15 {
            pick(rng, &NOTES).to_string()
        } else {
            String::new()
        };
        let recording_url = if has_recording && !late_recording {
            format!("{}/recordings/{id}.wav", self.recording_base)
        } else {
            String::new()
        };
        SimCall {
            called_at: ended_at - Duration::seconds(i64::from(duration_s)),
            id,
            advisor,
            client_name,
            client_country_code: cc,
            client_number: number,
            duration_s,
            call_type,
            note,
            recording_url,
            synced_at,
            modified_at: synced_at,
            late_recording,
            known_client: !unknown,
        }
    }

    /// A random draw in `0..n` from the factory's generator (timing jitter).
    pub fn jitter(&mut self, n: u64) -> u64 {
        self.rng.u64(..n.max(1))
    }
}

impl SimCall {
    /// The copy with the recording that arrives later: newer `modified_at`.
    pub fn with_recording(&self, recording_base: &str, at: DateTime<Utc>) -> SimCall {
        SimCall {
            recording_url: format!(
                "{}/recordings/{}.wav",
                recording_base.trim_end_matches('/'),
                self.id
            ),
            synced_at: at,
            modified_at: at,
            late_recording: false,
            ..self.clone()
        }
    }

    /// The call-log row: `zone_suffix` true adds the offset (`+01`) as the API
    /// does; the webhook's timestamps are zone-less (reference callyzer.md §3.2).
    pub fn row(&self, tz: Tz, zone_suffix: bool) -> Value {
        let local = self.called_at.with_timezone(&tz);
        let stamp = |t: DateTime<Utc>| {
            let l = t.with_timezone(&tz);
            if zone_suffix {
                format!(
                    "{} {}",
                    l.format("%Y-%m-%d %H:%M:%S"),
                    &l.format("%:z").to_string()[..3]
                )
            } else {
                l.format("%Y-%m-%d %H:%M:%S").to_string()
            }
        };
        json!({
            "id": self.id,
            "client_name": self.client_name,
            "client_country_code": self.client_country_code,
            "client_number": self.client_number,
            "duration": self.duration_s,
            "call_type": self.call_type,
            "call_date": local.format("%Y-%m-%d").to_string(),
            "call_time": local.format("%H:%M:%S").to_string(),
            "note": self.note,
            "call_recording_url": self.recording_url,
            "crm_status": "",
            "reminder_date": "",
            "reminder_time": "",
            "synced_at": stamp(self.synced_at),
            "modified_at": stamp(self.modified_at),
            "lead_id": "",
        })
    }
}

impl Advisor {
    /// The employee part of a delivery or an API row.
    pub fn employee(&self) -> Value {
        json!({
            "emp_name": self.name,
            "emp_code": self.emp_code,
            "emp_country_code": self.country_code,
            "emp_number": self.number,
            "emp_tags": ["sales"],
        })
    }

    /// The `emp_numbers` filter form: `48-600100200`.
    pub fn filter_number(&self) -> String {
        format!("{}-{}", self.country_code, self.number)
    }
}

/// A webhook delivery: calls grouped by employee (reference callyzer.md §5).
pub fn delivery(world: &World, calls: &[SimCall], tz: Tz) -> Value {
    let mut by_advisor: Vec<(usize, Vec<Value>)> = Vec::new();
    for c in calls {
        match by_advisor.iter_mut().find(|(a, _)| *a == c.advisor) {
            Some((_, rows)) => rows.push(c.row(tz, false)),
            None => by_advisor.push((c.advisor, vec![c.row(tz, false)])),
        }
    }
    Value::Array(
        by_advisor
            .into_iter()
            .filter_map(|(a, rows)| {
                let mut e = world.advisors.get(a)?.employee();
                e["call_logs"] = Value::Array(rows);
                Some(e)
            })
            .collect(),
    )
}

/// An API history row: employee fields and call fields in one object.
pub fn api_row(world: &World, call: &SimCall, tz: Tz) -> Value {
    let mut row = call.row(tz, true);
    if let (Some(obj), Some(emp)) = (row.as_object_mut(), world.advisors.get(call.advisor)) {
        if let Value::Object(e) = emp.employee() {
            obj.extend(e);
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_same_seed_gives_the_same_world_and_it_includes_the_seed_data() {
        let a = World::generate(7, 6, 40);
        let b = World::generate(7, 6, 40);
        assert_eq!(a.advisors, b.advisors);
        assert_eq!(a.leads, b.leads);
        assert_eq!(a.advisors.len(), 9);
        assert_eq!(a.leads.len(), 43);
        assert_eq!(a.advisors[0].emp_code, "SALES-07");
        assert!(a.advisors.iter().any(|x| x.country_code == "375"));
        assert!(a.leads.iter().any(|l| l.handset.0 == "375"));
        let names: std::collections::HashSet<_> = a.leads.iter().map(|l| &l.name).collect();
        assert_eq!(names.len(), a.leads.len(), "lead names are unique");
    }

    #[test]
    fn calls_cover_every_type_unknown_numbers_and_late_recordings() {
        let world = World::generate(1, 3, 20);
        let mut f = CallFactory::new(1, "t", "http://sim/");
        let now = t("2026-01-15T10:00:00Z");
        let calls: Vec<SimCall> = (0..500).map(|_| f.call(&world, now, now)).collect();
        for ty in ["Incoming", "Outgoing", "Missed", "Rejected"] {
            assert!(calls.iter().any(|c| c.call_type == ty), "{ty}");
        }
        assert!(calls.iter().any(|c| !c.known_client));
        assert!(calls.iter().any(|c| c.known_client));
        assert!(calls
            .iter()
            .any(|c| c.late_recording && c.recording_url.is_empty()));
        assert!(calls
            .iter()
            .all(|c| c.duration_s == 0 || matches!(c.call_type, "Incoming" | "Outgoing")));
        let ids: std::collections::HashSet<_> = calls.iter().map(|c| &c.id).collect();
        assert_eq!(ids.len(), 500);
    }

    #[test]
    fn a_late_recording_is_a_newer_copy_of_the_same_call() {
        let world = World::generate(1, 0, 3);
        let mut f = CallFactory::new(2, "t", "http://sim");
        let now = t("2026-01-15T10:00:00Z");
        let first = f.call(&world, now, now);
        let later = first.with_recording("http://sim", now + Duration::seconds(30));
        assert_eq!(later.id, first.id);
        assert!(later.modified_at > first.modified_at);
        assert_eq!(
            later.recording_url,
            format!("http://sim/recordings/{}.wav", first.id)
        );
    }

    #[test]
    fn rows_read_in_the_account_zone_with_and_without_offset() {
        let world = World::generate(1, 0, 3);
        let mut f = CallFactory::new(3, "t", "http://sim");
        let c = f.call(&world, t("2026-01-15T10:00:00Z"), t("2026-01-15T10:00:05Z"));
        let tz: Tz = "Europe/Warsaw".parse().unwrap();
        let hook = c.row(tz, false);
        assert_eq!(hook["synced_at"], "2026-01-15 11:00:05");
        let api = api_row(&world, &c, tz);
        assert_eq!(api["synced_at"], "2026-01-15 11:00:05 +01");
        assert!(api["emp_code"].is_string());
        let d = delivery(&world, &[c.clone(), c], tz);
        assert_eq!(d.as_array().unwrap().len(), 1);
        assert_eq!(d[0]["call_logs"].as_array().unwrap().len(), 2);
    }
}
