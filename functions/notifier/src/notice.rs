//! What the notifier is told (a scaling action, a forecaster alert, or any
//! other text) and how it is said to a human.

use prescient_contracts::action::{Alert, AlertKind, Outcome, ScalingAction};
use prescient_contracts::decision::Target;

/// One thing to tell the team.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// What the scaler did with a decision.
    Action(ScalingAction),
    /// An alert from the forecaster.
    Alert(Alert),
    /// Any other message published on the topic.
    Text {
        /// SNS subject, when any.
        subject: Option<String>,
        /// The message.
        message: String,
    },
}

/// How bad a notice is; part of the burst key, so a failure is never
/// hidden behind an earlier success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Routine.
    Info,
    /// Worth a look (clamped, stale, alerts).
    Warning,
    /// Something failed.
    Error,
}

impl Notice {
    /// Parses a message body: a [`ScalingAction`] (has `outcome`), an
    /// [`Alert`] (has `alert`), or plain text.
    pub fn parse(subject: Option<&str>, message: &str) -> Notice {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(message) {
            if v.get("outcome").is_some()
                && let Ok(a) = serde_json::from_value::<ScalingAction>(v.clone())
            {
                return Notice::Action(a);
            }
            if v.get("alert").is_some()
                && let Ok(a) = serde_json::from_value::<Alert>(v)
            {
                return Notice::Alert(a);
            }
        }
        Notice::Text {
            subject: subject.map(str::to_string),
            message: message.to_string(),
        }
    }

    /// How bad it is.
    pub fn severity(&self) -> Severity {
        match self {
            Notice::Action(a) => match a.outcome {
                Outcome::Failed => Severity::Error,
                Outcome::Clamped | Outcome::SkippedStale => Severity::Warning,
                _ => Severity::Info,
            },
            Notice::Alert(_) => Severity::Warning,
            Notice::Text { .. } => Severity::Info,
        }
    }

    /// What bursts are collapsed on: the target (or alert kind and service)
    /// and the severity.
    pub fn burst_key(&self) -> String {
        let what = match self {
            Notice::Action(a) => a.target_key(),
            Notice::Alert(a) => format!("alert/{}/{}", alert_label(a.alert), a.service),
            Notice::Text { subject, .. } => format!("text/{}", subject.as_deref().unwrap_or("")),
        };
        format!("{what}/{:?}", self.severity())
    }

    /// The human message: one line, then the reason.
    pub fn render(&self) -> String {
        match self {
            Notice::Action(a) => render_action(a),
            Notice::Alert(a) => {
                let (icon, what) = match a.alert {
                    AlertKind::ForecastErrorHigh => {
                        (":chart_with_downwards_trend:", "forecast error is high")
                    }
                    AlertKind::FallbackReactive => {
                        (":arrows_counterclockwise:", "fell back to reactive scaling")
                    }
                    AlertKind::Other => (":bell:", "alert"),
                };
                format!("{icon} *{}*: {what}: {}", a.service, a.message)
            }
            Notice::Text { subject, message } => match subject {
                Some(s) => format!(":bell: *{s}*: {}", truncate(message, 500)),
                None => format!(":bell: {}", truncate(message, 500)),
            },
        }
    }

    /// A one-line e-mail subject.
    pub fn subject(&self) -> String {
        let s = match self {
            Notice::Action(a) => {
                format!("prescient {}: {} {}", a.service, a.outcome, a.target_key())
            }
            Notice::Alert(a) => format!("prescient {}: {}", a.service, alert_label(a.alert)),
            Notice::Text { subject, .. } => {
                subject.clone().unwrap_or_else(|| "prescient notice".into())
            }
        };
        prescient_contracts::action::sns_subject(&s)
    }
}

fn alert_label(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::ForecastErrorHigh => "forecast-error-high",
        AlertKind::FallbackReactive => "fallback-reactive",
        AlertKind::Other => "other",
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::Nodegroup { cluster, nodegroup } => format!("node group {cluster}/{nodegroup}"),
        Target::Deployment {
            cluster,
            namespace,
            name,
        } => format!("deployment {namespace}/{name} on {cluster}"),
    }
}

fn size(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

fn render_action(a: &ScalingAction) -> String {
    let target = describe(&a.target);
    let short_id: String = a.decision_id.to_string().chars().take(8).collect();
    let line = match a.outcome {
        Outcome::Applied => format!(
            ":white_check_mark: *{}*: {target} scaled {} → {}",
            a.service,
            size(a.previous),
            size(a.applied)
        ),
        Outcome::Clamped => format!(
            ":warning: *{}*: {target} scaled {} → {} (asked {}, clamped to bounds)",
            a.service,
            size(a.previous),
            size(a.applied),
            a.requested
        ),
        Outcome::Unchanged => format!(
            ":information_source: *{}*: {target} already at {}",
            a.service,
            size(a.applied)
        ),
        Outcome::SkippedStale => format!(
            ":hourglass: *{}*: stale decision for {target} not applied",
            a.service
        ),
        Outcome::SkippedSuperseded => format!(
            ":fast_forward: *{}*: decision for {target} superseded",
            a.service
        ),
        Outcome::DryRun => format!(
            ":test_tube: *{}*: dry-run: would scale {target} {} → {}",
            a.service,
            size(a.previous),
            size(a.applied)
        ),
        Outcome::Failed => format!(
            ":x: *{}*: scaling {target} to {} failed ({})",
            a.service,
            a.requested,
            if a.retryable {
                "will be retried"
            } else {
                "not retried"
            }
        ),
    };
    format!("{line}\n{} (decision {short_id})", truncate(&a.reason, 300))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescient_contracts::decision::Mode;

    fn action(outcome: Outcome) -> ScalingAction {
        ScalingAction {
            decision_id: "6f1c0d2e-0000-4000-8000-000000000000".parse().unwrap(),
            service: "checkout".into(),
            target: Target::Nodegroup {
                cluster: "prod".into(),
                nodegroup: "web".into(),
            },
            outcome,
            previous: Some(2),
            requested: 50,
            applied: Some(10),
            reason: "desired 50 clamped to 10 (bounds 1..=10); set 2 → 10".into(),
            mode: Mode::Apply,
            retryable: false,
            at: "2026-11-21T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn renders_actions_for_humans() {
        let text = Notice::Action(action(Outcome::Clamped)).render();
        assert_eq!(
            text,
            ":warning: *checkout*: node group prod/web scaled 2 → 10 (asked 50, clamped to bounds)\n\
             desired 50 clamped to 10 (bounds 1..=10); set 2 → 10 (decision 6f1c0d2e)"
        );
        let mut failed = action(Outcome::Failed);
        failed.retryable = true;
        assert!(Notice::Action(failed).render().starts_with(
            ":x: *checkout*: scaling node group prod/web to 50 failed (will be retried)"
        ));
        assert!(
            Notice::Action(action(Outcome::DryRun))
                .render()
                .contains("dry-run: would scale")
        );
    }

    #[test]
    fn parses_actions_alerts_and_text() {
        let a = action(Outcome::Applied);
        let n = Notice::parse(None, &serde_json::to_string(&a).unwrap());
        assert_eq!(n, Notice::Action(a));
        assert_eq!(n.burst_key(), "nodegroup/prod/web/Info");
        let alert = Notice::parse(
            None,
            r#"{"alert":"forecast-error-high","service":"checkout","message":"MASE 1.8 over the last hour","at":"2026-11-21T10:00:00Z"}"#,
        );
        assert_eq!(
            alert.render(),
            ":chart_with_downwards_trend: *checkout*: forecast error is high: MASE 1.8 over the last hour"
        );
        assert_eq!(alert.severity(), Severity::Warning);
        assert_eq!(alert.subject(), "prescient checkout: forecast-error-high");
        let text = Notice::parse(Some("hello"), r#"{"outcome":"not really"}"#);
        assert!(matches!(text, Notice::Text { .. }));
        assert_eq!(text.render(), r#":bell: *hello*: {"outcome":"not really"}"#);
    }

    #[test]
    fn failures_and_successes_burst_separately() {
        let ok = Notice::Action(action(Outcome::Applied));
        let bad = Notice::Action(action(Outcome::Failed));
        assert_ne!(ok.burst_key(), bad.burst_key());
        assert!(bad.severity() > ok.severity());
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
