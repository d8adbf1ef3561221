//! A post-call analysis: topic, intent, quality score 1–5, summaries, advice,
//! lead status, qualification comment. Whoever produced the values (the
//! event's own analysis block or an LLM), holding a [`CallAnalysis`] means
//! every text is trimmed, non-empty and within [`limits`], and the score is in
//! range. What the CRM gets is cut again to the CRM's own limits at dispatch.
use serde_json::Value;

/// Stored lengths, in characters (Unicode scalar values), per field.
pub mod limits {
    /// `topic`
    pub const TOPIC: usize = 250;
    /// `intent`
    pub const INTENT: usize = 250;
    /// `lead_status`
    pub const LEAD_STATUS: usize = 100;
    /// `summary`, `summary_ru`
    pub const SUMMARY: usize = 4000;
    /// `recommendations`
    pub const RECOMMENDATIONS: usize = 2000;
    /// `qualification_comment`
    pub const QUALIFICATION_COMMENT: usize = 2000;
}

/// A call's quality, 1 (bad) to 5 (excellent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QualityScore(u8);

impl QualityScore {
    /// The score when it is a whole number (or a numeric string) from 1 to 5;
    /// a fractional number is rounded first. Anything else is `None`.
    pub fn from_json(v: &Value) -> Option<QualityScore> {
        let n = match v {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        let r = n.round();
        (1.0..=5.0).contains(&r).then_some(QualityScore(r as u8))
    }

    /// A score from 1 to 5.
    pub fn new(n: u8) -> Option<QualityScore> {
        (1..=5).contains(&n).then_some(QualityScore(n))
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// The analysis' values. Build with [`CallAnalysis::default`] and
/// [`CallAnalysis::set`], or [`CallAnalysis::from_json`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallAnalysis {
    /// What the call was about.
    pub topic: Option<String>,
    /// What the caller wants.
    pub intent: Option<String>,
    /// 1–5.
    pub quality_score: Option<QualityScore>,
    /// The summary in the call's language (often English from ElevenLabs).
    pub summary: Option<String>,
    /// The summary in Russian.
    pub summary_ru: Option<String>,
    /// Advice for the sales team.
    pub recommendations: Option<String>,
    /// Lead status for the CRM (`UsrTSLeadStatus`).
    pub lead_status: Option<String>,
    /// Why the lead is (not) qualified.
    pub qualification_comment: Option<String>,
}

/// The text fields by name, with their limits.
pub const TEXT_FIELDS: [(&str, usize); 7] = [
    ("topic", limits::TOPIC),
    ("intent", limits::INTENT),
    ("summary", limits::SUMMARY),
    ("summary_ru", limits::SUMMARY),
    ("recommendations", limits::RECOMMENDATIONS),
    ("lead_status", limits::LEAD_STATUS),
    ("qualification_comment", limits::QUALIFICATION_COMMENT),
];

/// `s` trimmed and cut to `max` characters, an ellipsis marking the cut;
/// `None` when nothing is left.
pub fn cap(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || max == 0 {
        return None;
    }
    if s.chars().count() <= max {
        return Some(s.to_string());
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    Some(out)
}

impl CallAnalysis {
    fn slot(&mut self, field: &str) -> Option<&mut Option<String>> {
        Some(match field {
            "topic" => &mut self.topic,
            "intent" => &mut self.intent,
            "summary" => &mut self.summary,
            "summary_ru" => &mut self.summary_ru,
            "recommendations" => &mut self.recommendations,
            "lead_status" => &mut self.lead_status,
            "qualification_comment" => &mut self.qualification_comment,
            _ => return None,
        })
    }

    /// Sets a text field by name, trimmed and capped (unknown names are ignored).
    pub fn set(&mut self, field: &str, value: Option<&str>) {
        let max = TEXT_FIELDS
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(0, |(_, m)| *m);
        if let Some(slot) = self.slot(field) {
            *slot = value.and_then(|v| cap(v, max));
        }
    }

    /// Reads a JSON object with the field names above and `quality_score`
    /// (an LLM's answer). Wrong-typed values count as absent; a score out of
    /// range is dropped.
    pub fn from_json(v: &Value) -> CallAnalysis {
        let mut a = CallAnalysis {
            quality_score: v.get("quality_score").and_then(QualityScore::from_json),
            ..CallAnalysis::default()
        };
        for (field, _) in TEXT_FIELDS {
            a.set(field, v.get(field).and_then(Value::as_str));
        }
        a
    }

    /// Names of the fields still empty.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        let mut probe = self.clone();
        for (field, _) in TEXT_FIELDS {
            if probe.slot(field).is_some_and(|s| s.is_none()) {
                out.push(field);
            }
        }
        if self.quality_score.is_none() {
            out.push("quality_score");
        }
        out
    }

    /// Fills every empty field from `other`; fields already set are kept.
    pub fn fill_from(&mut self, other: &CallAnalysis) {
        let mut other = other.clone();
        for (field, _) in TEXT_FIELDS {
            let theirs = other.slot(field).and_then(Option::take);
            if let Some(mine) = self.slot(field) {
                if mine.is_none() {
                    *mine = theirs;
                }
            }
        }
        self.quality_score = self.quality_score.or(other.quality_score);
    }

    /// The analysis as JSON (raw output and tests).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "topic": self.topic, "intent": self.intent,
            "quality_score": self.quality_score.map(QualityScore::get),
            "summary": self.summary, "summary_ru": self.summary_ru,
            "recommendations": self.recommendations, "lead_status": self.lead_status,
            "qualification_comment": self.qualification_comment,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scores_outside_one_to_five_are_dropped() {
        assert_eq!(
            QualityScore::from_json(&json!(4)).map(QualityScore::get),
            Some(4)
        );
        assert_eq!(
            QualityScore::from_json(&json!("5")).map(QualityScore::get),
            Some(5)
        );
        assert_eq!(
            QualityScore::from_json(&json!(4.6)).map(QualityScore::get),
            Some(5)
        );
        assert_eq!(QualityScore::from_json(&json!(0)), None);
        assert_eq!(QualityScore::from_json(&json!(7)), None);
        assert_eq!(QualityScore::from_json(&json!("great")), None);
    }

    #[test]
    fn long_text_is_cut_to_its_limit_with_an_ellipsis() {
        let a = CallAnalysis::from_json(&json!({"topic": "я".repeat(600)}));
        let topic = a.topic.unwrap();
        assert_eq!(topic.chars().count(), limits::TOPIC);
        assert!(topic.ends_with('…'));
    }

    #[test]
    fn filling_keeps_what_is_set_and_takes_only_the_gaps() {
        let mut mine = CallAnalysis::from_json(&json!({"summary": "from the event"}));
        let theirs = CallAnalysis::from_json(
            &json!({"summary": "llm", "summary_ru": "итог", "quality_score": 3}),
        );
        mine.fill_from(&theirs);
        assert_eq!(mine.summary.as_deref(), Some("from the event"));
        assert_eq!(mine.summary_ru.as_deref(), Some("итог"));
        assert_eq!(mine.quality_score, QualityScore::new(3));
        assert!(!mine.missing().contains(&"summary_ru"));
    }

    #[test]
    fn blank_values_are_absent() {
        let a = CallAnalysis::from_json(&json!({"intent": "   ", "topic": 12}));
        assert_eq!(a.intent, None);
        assert_eq!(a.topic, None);
    }
}
