//! Configuration, from environment variables only.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `PRESCIENT_WEBHOOK_URL` | unset | Slack-compatible incoming webhook (`POST {"text": …}`) |
//! | `PRESCIENT_WEBHOOK_SECRET_ID` | unset | Secrets Manager secret holding the webhook URL (plain, or JSON `{"url": …}`); used when `PRESCIENT_WEBHOOK_URL` is unset |
//! | `PRESCIENT_EMAIL_TOPIC_ARN` | unset | SNS topic with e-mail subscriptions; each message is published there too |
//! | `PRESCIENT_NOTIFY_WINDOW_SECS` | `300` | per target, at most one message per window; the rest are collapsed into a count |
//! | `PRESCIENT_NOTIFY_OUTCOMES` | `applied,clamped,skipped-stale,dry-run,failed` | which scaling outcomes are worth a message |
//!
//! With no webhook and no e-mail topic, messages are only logged.

use prescient_contracts::action::Outcome;
use prescient_functions_common::config::{ConfigError, nonempty, parse_positive};

use crate::sink::SecretUrl;

/// The notifier's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Webhook URL given directly (`PRESCIENT_WEBHOOK_URL`).
    pub webhook_url: Option<SecretUrl>,
    /// Secrets Manager secret id of the webhook URL (`PRESCIENT_WEBHOOK_SECRET_ID`).
    pub webhook_secret_id: Option<String>,
    /// SNS topic for e-mail (`PRESCIENT_EMAIL_TOPIC_ARN`).
    pub email_topic_arn: Option<String>,
    /// Rate-limit window per target (`PRESCIENT_NOTIFY_WINDOW_SECS`).
    pub window: chrono::Duration,
    /// Outcomes that produce a message (`PRESCIENT_NOTIFY_OUTCOMES`).
    pub outcomes: Vec<Outcome>,
}

/// Outcomes notified by default: everything but `unchanged` and
/// `skipped-superseded`, which are routine.
pub(crate) const DEFAULT_OUTCOMES: [Outcome; 5] = [
    Outcome::Applied,
    Outcome::Clamped,
    Outcome::SkippedStale,
    Outcome::DryRun,
    Outcome::Failed,
];

impl Default for Config {
    fn default() -> Self {
        Config {
            webhook_url: None,
            webhook_secret_id: None,
            email_topic_arn: None,
            window: chrono::Duration::seconds(300),
            outcomes: DEFAULT_OUTCOMES.to_vec(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let nonempty = nonempty(get);
        let d = Config::default();
        let outcomes = match nonempty("PRESCIENT_NOTIFY_OUTCOMES") {
            None => d.outcomes,
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<Outcome>().map_err(|_| ConfigError {
                        name: "PRESCIENT_NOTIFY_OUTCOMES",
                        value: list.clone(),
                        why: format!(
                            "unknown outcome {s:?} (one of {})",
                            Outcome::all()
                                .map(Outcome::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Config {
            webhook_url: nonempty("PRESCIENT_WEBHOOK_URL").map(SecretUrl::new),
            webhook_secret_id: nonempty("PRESCIENT_WEBHOOK_SECRET_ID"),
            email_topic_arn: nonempty("PRESCIENT_EMAIL_TOPIC_ARN"),
            window: match nonempty("PRESCIENT_NOTIFY_WINDOW_SECS") {
                None => d.window,
                Some(v) => chrono::Duration::seconds(parse_positive(
                    "PRESCIENT_NOTIFY_WINDOW_SECS",
                    &v,
                )? as i64),
            },
            outcomes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(prescient_functions_common::testkit::lookup_pairs(pairs))
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(cfg(&[]).unwrap(), Config::default());
        let c = cfg(&[
            (
                "PRESCIENT_WEBHOOK_URL",
                "https://hooks.example.com/services/T0/B0/hushhush",
            ),
            ("PRESCIENT_NOTIFY_WINDOW_SECS", "60"),
            ("PRESCIENT_NOTIFY_OUTCOMES", "failed, skipped-stale"),
        ])
        .unwrap();
        assert_eq!(c.window, chrono::Duration::seconds(60));
        assert_eq!(c.outcomes, [Outcome::Failed, Outcome::SkippedStale]);
        assert!(
            !format!("{c:?}").contains("hushhush"),
            "Debug never shows the webhook URL"
        );
    }

    #[test]
    fn rejects_unknown_outcomes() {
        let e = cfg(&[("PRESCIENT_NOTIFY_OUTCOMES", "applied,exploded")]).unwrap_err();
        assert!(e.why.contains("exploded"));
    }
}
