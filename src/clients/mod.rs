//! One reqwest wrapper per outside system. Each maps the HTTP outcome to
//! [`crate::jobs::JobError`]: timeouts, 408, 429 and 5xx are retryable, every
//! other 4xx permanent. Secrets they hold are [`crate::secret::Secret`]s.

pub mod bpmsoft;
pub mod callyzer;
pub mod llm;
pub mod notify;
