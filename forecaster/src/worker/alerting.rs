//! Alerts: each service's conditions through the hysteresis of
//! [`crate::alerts`], published on `scaling-actions` for the notifier.

use super::*;

/// Fewest scored forecast points before a high live error raises an alert.
pub(super) const MIN_ALERT_SAMPLES: usize = 30;

impl Worker {
    /// Feeds this bucket's observations to every service's alert
    /// hysteresis; publishes the alerts raised (a failed send is logged
    /// and counted, not retried: the condition is still visible in the
    /// metrics) and returns them.
    pub(super) async fn raise_alerts(
        &mut self,
        minute: DateTime<Utc>,
        issued_at: DateTime<Utc>,
        decisions: &[ScalingDecision],
    ) -> Vec<Alert> {
        let at = issued_at;
        let mut raised = vec![];
        for (name, st) in self.services.iter_mut() {
            let policy = self
                .config
                .policies
                .for_service(name)
                .unwrap_or(&self.config.policies.defaults);
            let mut obs = Observation::default();
            if let Some(a) = st
                .accuracy
                .filter(|a| a.samples >= MIN_ALERT_SAMPLES && a.mase > policy.max_live_mase)
            {
                obs.error_high = Some(format!(
                    "live MASE {:.2} over the last {} forecast points > {:.2}",
                    a.mase, a.samples, policy.max_live_mase
                ));
            }
            if st.ens.is_some()
                && let Some(d) = decisions
                    .iter()
                    .find(|d| d.service == *name && d.forecast.is_none())
            {
                obs.fallback = Some(d.reason.clone());
            }
            // Stale: forecasts stopped, or fitting fails. A first fit that
            // is only deferred (the fit budget at start-up) is warm-up.
            let fresh = st.latest.as_ref().is_some_and(|f| f.issued_at == issued_at);
            if !fresh && (st.latest.is_some() || st.fit_error.is_some()) {
                let last = st
                    .latest
                    .as_ref()
                    .map_or("never".to_string(), |f| f.issued_at.to_rfc3339());
                obs.stale = Some(match &st.fit_error {
                    Some(e) => format!(
                        "no forecast for the bucket at {minute} (last issued: {last}); fitting failed: {e}"
                    ),
                    None => format!("no forecast for the bucket at {minute} (last issued: {last})"),
                });
            }
            let (new, cleared) = st.alerts.observe(name, &obs, at, self.config.alerts);
            for a in &new {
                let c = Condition::all()
                    .find(|c| c.kind() == a.alert)
                    .unwrap_or(Condition::Stale);
                self.metrics.alerts.with_label_values(&[c.label()]).inc();
                self.metrics
                    .alert_active
                    .with_label_values(&[name.as_str(), c.label()])
                    .set(1);
                tracing::warn!(service = %name, kind = c.label(), message = %a.message, "forecaster alert");
            }
            for c in cleared {
                self.metrics
                    .alert_active
                    .with_label_values(&[name.as_str(), c.label()])
                    .set(0);
                tracing::info!(service = %name, kind = c.label(), "forecaster alert cleared");
            }
            raised.extend(new);
        }
        if let Some(producer) = &self.producer {
            for a in &raised {
                let payload = serde_json::to_string(a).expect("alerts serialise");
                let record = FutureRecord::to(prescient_contracts::SCALING_ACTIONS_TOPIC)
                    .key(&a.service)
                    .payload(&payload);
                if let Err((e, _)) = producer.send(record, Duration::from_secs(10)).await {
                    self.metrics.alert_publish_errors.inc();
                    tracing::warn!(service = %a.service, error = %e, "publishing an alert failed");
                }
            }
        }
        raised
    }
}
