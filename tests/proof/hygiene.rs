//! Secrets hygiene for the proof suites: scans what the stack and the worker
//! logged for the configured secrets, tokens and full phone numbers. A number
//! counts as leaked when all its digits appear together, also once spaces and
//! dashes are taken out (so "601 202 303" is caught as well as "+48601202303").
//! A phone's last three digits may appear (the domain types log only those).

/// Fails, naming the log and a short excerpt, when any `secrets` or any of
/// `numbers` (national digits, no spaces) appears in any of `logs`.
pub fn assert_clean(logs: &[(&str, String)], secrets: &[&str], numbers: &[&str]) {
    let mut found = Vec::new();
    for (name, text) in logs {
        let squeezed: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            if let Some(at) = text.find(s) {
                found.push(format!(
                    "{name}: a secret at byte {at}: …{}…",
                    excerpt(text, at)
                ));
            }
        }
        for n in numbers {
            if let Some(at) = squeezed.find(n) {
                found.push(format!(
                    "{name}: phone number {}…{} at {at}: …{}…",
                    &n[..2],
                    &n[n.len() - 3..],
                    excerpt(&squeezed, at)
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets or phone numbers in the logs:\n{}",
        found.join("\n")
    );
    let bytes: usize = logs.iter().map(|(_, t)| t.len()).sum();
    println!(
        "hygiene: {} logs, {bytes} bytes scanned for {} secrets and {} numbers: clean",
        logs.len(),
        secrets.len(),
        numbers.len()
    );
}

/// Up to 80 characters before `at`, with the secret itself masked.
fn excerpt(text: &str, at: usize) -> String {
    let mut start = at.saturating_sub(80);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    text[start..at].replace('\n', " ")
}
