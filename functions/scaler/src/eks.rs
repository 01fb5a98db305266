//! EKS API calls: read and set a managed node group's size, find a cluster's
//! Kubernetes endpoint and CA.

use aws_sdk_eks::types::NodegroupScalingConfig;
use base64::Engine as _;

use crate::error::ScalerError;
use crate::kube::ClusterAccess;
use prescient_functions_common::plan::Observed;

/// The EKS operations the scaler needs, over one SDK client.
#[derive(Debug, Clone)]
pub(crate) struct Eks {
    client: aws_sdk_eks::Client,
}

impl Eks {
    /// Wraps a client (build it once, at init).
    pub(crate) fn new(client: aws_sdk_eks::Client) -> Eks {
        Eks { client }
    }

    /// `DescribeNodegroup`: the node group's desired size and its bounds.
    pub(crate) async fn observe_nodegroup(
        &self,
        cluster: &str,
        nodegroup: &str,
    ) -> Result<Observed, ScalerError> {
        let out = self
            .client
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(nodegroup)
            .send()
            .await
            .map_err(|e| ScalerError::from_sdk("DescribeNodegroup", e))?;
        let scaling = out
            .nodegroup()
            .and_then(|n| n.scaling_config())
            .ok_or_else(|| ScalerError::Eks {
                operation: "DescribeNodegroup",
                message: format!("node group {cluster}/{nodegroup} has no scaling config"),
                retryable: false,
            })?;
        let size = |v: Option<i32>| v.map(|n| n.max(0) as u32);
        Ok(Observed {
            current: size(scaling.desired_size()).unwrap_or(0),
            min: size(scaling.min_size()),
            max: size(scaling.max_size()),
        })
    }

    /// `UpdateNodegroupConfig` setting only the desired size. The decision id
    /// is the client request token, so EKS itself ignores a repeat of the
    /// same decision.
    pub(crate) async fn set_nodegroup_size(
        &self,
        cluster: &str,
        nodegroup: &str,
        desired: u32,
        request_token: &str,
    ) -> Result<(), ScalerError> {
        let desired = i32::try_from(desired).map_err(|_| ScalerError::Eks {
            operation: "UpdateNodegroupConfig",
            message: format!("desired size {desired} is out of range"),
            retryable: false,
        })?;
        self.client
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(nodegroup)
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .desired_size(desired)
                    .build(),
            )
            .client_request_token(request_token)
            .send()
            .await
            .map_err(|e| ScalerError::from_sdk("UpdateNodegroupConfig", e))?;
        Ok(())
    }

    /// `DescribeCluster`: the Kubernetes API endpoint and its CA (PEM).
    pub(crate) async fn cluster_access(&self, cluster: &str) -> Result<ClusterAccess, ScalerError> {
        let out = self
            .client
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(|e| ScalerError::from_sdk("DescribeCluster", e))?;
        let c = out.cluster().ok_or_else(|| ScalerError::ClusterAccess {
            cluster: cluster.into(),
            message: "DescribeCluster returned no cluster".into(),
        })?;
        let endpoint =
            c.endpoint()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| ScalerError::ClusterAccess {
                    cluster: cluster.into(),
                    message: "cluster has no API endpoint (still creating?)".into(),
                })?;
        let ca_b64 = c
            .certificate_authority()
            .and_then(|ca| ca.data())
            .ok_or_else(|| ScalerError::ClusterAccess {
                cluster: cluster.into(),
                message: "cluster has no certificate authority data".into(),
            })?;
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca_b64.trim())
            .map_err(|e| ScalerError::ClusterAccess {
                cluster: cluster.into(),
                message: format!("CA data is not base64: {e}"),
            })?;
        Ok(ClusterAccess {
            endpoint: endpoint.to_string(),
            ca_pem,
        })
    }
}
