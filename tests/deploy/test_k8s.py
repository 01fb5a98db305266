"""infra/k8s, infra/keda: every Kustomize overlay renders with `kubectl
kustomize`, validates strictly against the Kubernetes schemas of the targeted
EKS version, custom resources against their CRD schemas, and the manifests
keep the properties the deployment relies on."""
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT

K8S = ROOT / "infra" / "k8s"
OVERLAYS = ["overlays/generic", "overlays/eks"]
# Kubernetes version the manifests target: the EKS version Terraform deploys.
K8S_VERSION = "1.33.0"
CRD_DIR = ROOT / "tests" / "deploy" / "crd"
VENV_BIN = pathlib.Path(os.environ.get("PRESCIENT_VENV", ROOT / ".venv")) / "bin"
WORKLOADS = {"StatefulSet", "Deployment"}


def kustomize(path):
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {path}: {out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def is_custom(doc):
    return doc["apiVersion"].split("/")[0].endswith((".sh", ".coreos.com"))


def k8s_validate(docs, tmp_path):
    f = tmp_path / "docs.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet",
                           str(f)], capture_output=True, text=True, timeout=120)


def crd_validate(docs):
    if not (CRD_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CRD_DIR, check=True)
    return subprocess.run(["node", "validate.mjs"], cwd=CRD_DIR, input=json.dumps(docs),
                          capture_output=True, text=True, timeout=60)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return request.param, kustomize(K8S / request.param)


def test_overlay_validates_strictly_against_kubernetes_schemas(rendered, tmp_path):
    name, docs = rendered
    core = [d for d in docs if not is_custom(d)]
    assert len(core) >= 15, name
    out = k8s_validate(core, tmp_path)
    assert out.returncode == 0, f"{name}:\n{out.stdout}{out.stderr}"
    # The check is strict: a misspelt field fails it.
    broken = copy.deepcopy(core)
    next(d for d in broken if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]["securityContex"] = {}
    assert k8s_validate(broken, tmp_path).returncode != 0


def test_custom_resources_validate_against_their_crds(rendered):
    name, docs = rendered
    custom = [d for d in docs if is_custom(d)]
    assert {d["kind"] for d in custom} == {"PodMonitor", "PrometheusRule"}, name
    out = crd_validate(custom)
    assert out.returncode == 0, f"{name}:\n{out.stdout}{out.stderr}"
    assert out.stdout.count("ok ") == len(custom)


def test_keda_scaledobjects_validate_against_the_keda_crds():
    docs = kustomize(ROOT / "infra" / "keda")
    assert {d["kind"] for d in docs} == {"ScaledObject", "TriggerAuthentication"}
    out = crd_validate(docs)
    assert out.returncode == 0, out.stdout + out.stderr
    broken = copy.deepcopy(docs)
    broken[0]["spec"]["minReplicaCount"] = "two"
    assert crd_validate(broken).returncode != 0, "the CRD check catches a wrong type"
    misspelt = copy.deepcopy(docs)
    misspelt[0]["spec"]["pollingIntervall"] = 30
    out = crd_validate(misspelt)
    assert out.returncode != 0 and "spec.pollingIntervall" in out.stdout, "and a misspelt optional field"
    prom = next(d for d in docs if d["metadata"]["name"] == "checkout-forecast")
    trigger = prom["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and "prescient_scaling_desired" in trigger["metadata"]["query"]


def test_demo_keda_postgresql_query_runs_against_the_forecasts_table(demo):
    docs = kustomize(ROOT / "infra" / "keda")
    so = next(d for d in docs if d["metadata"]["name"] == "search-forecast")
    query = so["spec"]["triggers"][0]["metadata"]["query"]
    rows = demo.psql(query)
    assert len(rows) == 1 and float(rows[0]) >= 0, rows


def test_pods_are_locked_down(rendered):
    name, docs = rendered
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    assert {w["metadata"]["name"] for w in workloads} == {
        "prescient-dataflow", "prescient-forecaster", "prescient-dashboard"}
    pdb_selectors = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    sas = by_kind(docs, "ServiceAccount")
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] in sas
        assert any(all(labels.get(k) == v for k, v in s.items()) for s in pdb_selectors), \
            f"no PodDisruptionBudget for {w['metadata']['name']}"
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
        for c in pod["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, c["name"]
            ports = {p["name"] for p in c["ports"]}
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"]["port"] in ports
    policies = by_kind(docs, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_dataflow_statefulset_forms_a_timely_cluster(rendered):
    name, docs = rendered
    sts = by_kind(docs, "StatefulSet")["prescient-dataflow"]
    svc = by_kind(docs, "Service")[sts["spec"]["serviceName"]]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    config = by_kind(docs, "ConfigMap")["prescient-config"]["data"]
    assert int(config["PRESCIENT_PROCESSES"]) == sts["spec"]["replicas"], \
        "PRESCIENT_PROCESSES must equal the StatefulSet's replicas"
    main = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in main["env"]}
    assert env["PRESCIENT_PROCESS"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert "--hostfile=/run/prescient/hosts" in main["args"]
    timely = next(p for p in main["ports"] if p["name"] == "timely")["containerPort"]
    init = sts["spec"]["template"]["spec"]["initContainers"][0]["args"][0]
    assert f"{sts['metadata']['name']}-$i.{svc['metadata']['name']}:{timely}" in init


def test_hostfile_script_writes_one_line_per_process(tmp_path):
    """Runs the init container's script (paths and hostname shimmed)."""
    sts = by_kind(kustomize(K8S / "overlays/generic"), "StatefulSet")["prescient-dataflow"]
    script = sts["spec"]["template"]["spec"]["initContainers"][0]["args"][0]
    script = script.replace("/run/prescient", str(tmp_path))
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "hostname").write_text("#!/bin/sh\necho prescient-dataflow-1\n")
    (shims / "getent").write_text("#!/bin/sh\n[ \"$2\" = prescient-dataflow-1.prescient-dataflow-peers ]\n")
    for f in shims.iterdir():
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}", PRESCIENT_PROCESSES="3")
    subprocess.run(["/bin/sh", "-c", script], env=env, check=True, timeout=10, capture_output=True)
    assert (tmp_path / "hosts").read_text().splitlines() == [
        f"prescient-dataflow-{i}.prescient-dataflow-peers:2101" for i in range(3)]


def test_pod_monitors_scrape_named_ports_of_every_component(rendered):
    name, docs = rendered
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    for pm in by_kind(docs, "PodMonitor").values():
        sel = pm["spec"]["selector"]["matchLabels"]
        matched = [w for w in workloads
                   if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        assert len(matched) == 1, pm["metadata"]["name"]
        ports = {p["name"] for c in matched[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert pm["spec"]["podMetricsEndpoints"][0]["port"] in ports
        # job label = the pod's app.kubernetes.io/name = the job names of the alert rules.
        assert matched[0]["spec"]["template"]["metadata"]["labels"][pm["spec"]["jobLabel"]].startswith("prescient-")
    assert len(by_kind(docs, "PodMonitor")) == 3


def test_prometheusrule_is_generated_from_the_rule_file(tmp_path):
    gen = K8S / "components" / "monitoring" / "generate.py"
    out = subprocess.run(["python3", "-c", f"import runpy; m = runpy.run_path({str(gen)!r}); print(m['render'](), end='')"],
                         capture_output=True, text=True, check=True)
    committed = (K8S / "components" / "monitoring" / "prometheusrule.yaml").read_text()
    assert out.stdout == committed, "run python3 infra/k8s/components/monitoring/generate.py"
    rules = yaml.safe_load((ROOT / "infra/monitoring/prometheus/rules/prescient-alerts.yml").read_text())
    assert yaml.safe_load(committed)["spec"]["groups"] == rules["groups"]


def test_eks_overlay_takes_terraform_outputs():
    docs = kustomize(K8S / "overlays/eks")
    env = dict(line.split("=", 1) for line in (K8S / "overlays/eks/aws.env").read_text().splitlines()
               if line and not line.startswith("#"))
    sas = by_kind(docs, "ServiceAccount")
    for comp in ("dataflow", "forecaster", "dashboard"):
        assert sas[f"prescient-{comp}"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == \
            env[f"{comp.upper()}_ROLE_ARN"]
    images = {c["image"] for d in docs if d["kind"] in WORKLOADS
              for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get("initContainers", [])}
    assert images == {env["IMAGE"]}
    assert by_kind(docs, "ConfigMap")["prescient-config"]["data"]["KAFKA_BROKERS"] == env["KAFKA_BROKERS"]
    # MSK accepts only IAM auth: the pods sign OAUTHBEARER tokens for this region.
    assert by_kind(docs, "ConfigMap")["prescient-config"]["data"]["PRESCIENT_KAFKA_MSK_IAM_REGION"] == env["AWS_REGION"]
    assert "prescient-aws" not in by_kind(docs, "ConfigMap"), "local-config stays out of the cluster"
    cidrs = [t["ipBlock"]["cidr"] for t in by_kind(docs, "NetworkPolicy")["external"]["spec"]["egress"][0]["to"]]
    assert cidrs == [env["VPC_CIDR"]]
    # The keys Terraform writes are exactly the keys the overlay reads.
    tf_out = (ROOT / "terraform/environments/example/outputs.tf").read_text()
    for key in env:
        assert re.search(rf"\b{key}=", tf_out), f"terraform output kustomize_env lacks {key}"
