//! Planning: the planner's decision for every service with a policy,
//! from its latest forecast and the size the scaler reported.

use super::*;

impl Worker {
    pub(super) fn plan_all(&mut self, now: DateTime<Utc>, sizes: &Sizes) -> Vec<ScalingDecision> {
        let mut out = vec![];
        for (name, st) in self.services.iter_mut() {
            let Some(policy) = self.config.policies.for_service(name) else {
                continue;
            };
            let mut policy = policy.clone();
            if self.config.force_dry_run {
                policy.mode = Mode::DryRun;
            }
            let window = TimeDelta::minutes(i64::from(policy.scale_in_stabilization_min));
            st.recent_desired.retain(|(t, _)| now - *t < window);
            let current = sizes.get(name).copied();
            let input = PlanInput {
                service: name.clone(),
                policy_name: if self.config.policies.services.contains_key(name) {
                    name.clone()
                } else {
                    "default".into()
                },
                now,
                current,
                last_minute_requests: st.values.last().copied().unwrap_or(0.0),
                forecast: st.latest.clone(),
                last_scale_up: st.last_scale_up,
                recent_desired: st.recent_desired.iter().copied().collect(),
            };
            let d = planner::plan(&input, &policy);
            if d.desired > d.current {
                st.last_scale_up = Some(now);
            }
            st.recent_desired.push_back((now, d.desired));
            let basis = if d.forecast.is_some() {
                "predictive"
            } else {
                "reactive"
            };
            self.metrics
                .decisions
                .with_label_values(&[name.as_str(), basis])
                .inc();
            self.metrics
                .desired
                .with_label_values(&[name.as_str()])
                .set(f64::from(d.desired));
            out.push(d);
        }
        out
    }
}
