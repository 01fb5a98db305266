//! The planner's policy file (TOML) and the worker's settings.
//!
//! ```toml
//! [defaults]                      # optional: every field of a service policy
//! lead_time_min = 8
//!
//! [services.checkout]
//! capacity_per_replica = 1200.0   # requests/min one replica serves at target utilisation
//! min_replicas = 2
//! max_replicas = 40
//! target = { kind = "deployment", cluster = "prod", namespace = "shop", name = "checkout" }
//! mode = "dry-run"
//! ```

use prescient_contracts::decision::{Mode, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Errors reading a policy file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("policy file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("policy for {service}: {msg}")]
    Invalid {
        /// Service (or `defaults`).
        service: String,
        /// What is wrong.
        msg: String,
    },
}

/// Capacity policy of one service. Defaults in parentheses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicePolicy {
    /// Requests per minute one replica serves at its target utilisation (default 100.0).
    pub capacity_per_replica: f64,
    /// Lower bound on replicas (default 1).
    pub min_replicas: u32,
    /// Upper bound on replicas (default 20).
    pub max_replicas: u32,
    /// Replicas per node; a `nodegroup` target is sized in nodes = ⌈replicas / pods_per_node⌉ (default 1).
    pub pods_per_node: u32,
    /// Time from a decision to ready capacity (node + pod start-up), minutes (default 5).
    pub lead_time_min: u32,
    /// Most the target size may change in one decision (default 10).
    pub max_step: u32,
    /// No scale-in within this many minutes of a scale-up, and a scale-in
    /// goes only to the highest size recommended in this window (default 10).
    pub scale_in_stabilization_min: u32,
    /// A forecast older than this is stale: fall back to reactive (default 3).
    pub max_forecast_age_min: u32,
    /// Live MASE above this is poor: fall back to reactive (default 2.0).
    pub max_live_mase: f64,
    /// Decisions expire this many minutes after they are issued (default 5).
    pub decision_ttl_min: u32,
    /// What to resize [deployment `default/default/<service>`].
    pub target: Option<Target>,
    /// `dry-run` (record only) or `apply` (default dry-run).
    pub mode: Mode,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            capacity_per_replica: 100.0,
            min_replicas: 1,
            max_replicas: 20,
            pods_per_node: 1,
            lead_time_min: 5,
            max_step: 10,
            scale_in_stabilization_min: 10,
            max_forecast_age_min: 3,
            max_live_mase: 2.0,
            decision_ttl_min: 5,
            target: None,
            mode: Mode::DryRun,
        }
    }
}

impl ServicePolicy {
    /// Checks ranges.
    pub fn validate(&self, service: &str) -> Result<(), ConfigError> {
        let bad = |msg: &str| {
            Err(ConfigError::Invalid {
                service: service.into(),
                msg: msg.into(),
            })
        };
        if self.capacity_per_replica.is_nan() || self.capacity_per_replica <= 0.0 {
            return bad("capacity_per_replica must be > 0");
        }
        if self.max_replicas < self.min_replicas || self.max_replicas == 0 {
            return bad("need 0 < max_replicas >= min_replicas");
        }
        if self.pods_per_node == 0 || self.max_step == 0 || self.decision_ttl_min == 0 {
            return bad("pods_per_node, max_step and decision_ttl_min must be >= 1");
        }
        Ok(())
    }

    /// The target, defaulting to a Deployment named after the service.
    pub fn target_for(&self, service: &str) -> Target {
        self.target.clone().unwrap_or_else(|| Target::Deployment {
            cluster: "default".into(),
            namespace: "default".into(),
            name: service.into(),
        })
    }
}

/// A policy file: defaults plus per-service overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Policy for services without their own section (and the base of every
    /// section: a service's fields override these).
    #[serde(default)]
    pub defaults: Option<toml::Table>,
    /// Per-service sections.
    #[serde(default)]
    pub services: BTreeMap<String, toml::Table>,
}

/// Resolved policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies {
    /// Policy of services without a section.
    pub defaults: ServicePolicy,
    /// Per-service policies (defaults merged in).
    pub services: BTreeMap<String, ServicePolicy>,
    /// Plan only for services listed in `services`.
    pub only_listed: bool,
}

impl Policies {
    /// Parses a policy file's text.
    pub fn from_toml(text: &str) -> Result<Policies, ConfigError> {
        let file: PolicyFile = toml::from_str(text)?;
        let base = file.defaults.clone().unwrap_or_default();
        let defaults: ServicePolicy = base.clone().try_into()?;
        defaults.validate("defaults")?;
        let mut services = BTreeMap::new();
        for (name, table) in file.services {
            let mut merged = base.clone();
            merged.extend(table);
            let p: ServicePolicy = merged.try_into()?;
            p.validate(&name)?;
            services.insert(name, p);
        }
        Ok(Policies {
            defaults,
            services,
            only_listed: false,
        })
    }

    /// Reads a policy file.
    pub fn from_path(path: &Path) -> Result<Policies, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The policy of `service`.
    pub fn for_service(&self, service: &str) -> Option<&ServicePolicy> {
        match self.services.get(service) {
            Some(p) => Some(p),
            None if self.only_listed => None,
            None => Some(&self.defaults),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_defaults_and_rejects_unknown_fields() {
        let p = Policies::from_toml(
            r#"
            [defaults]
            lead_time_min = 8
            [services.checkout]
            capacity_per_replica = 1200.0
            max_replicas = 40
            mode = "apply"
            target = { kind = "nodegroup", cluster = "prod", nodegroup = "web" }
            "#,
        )
        .unwrap();
        let c = p.for_service("checkout").unwrap();
        assert_eq!(
            (c.lead_time_min, c.max_replicas, c.mode),
            (8, 40, Mode::Apply)
        );
        assert!(matches!(c.target_for("checkout"), Target::Nodegroup { .. }));
        assert_eq!(p.for_service("other").unwrap().lead_time_min, 8);
        assert!(Policies::from_toml("[services.x]\nlead_time = 3\n").is_err());
        assert!(Policies::from_toml("[services.x]\nmax_replicas = 0\n").is_err());
        assert!(Policies::from_toml("[other]\n").is_err());
    }
}
