"""checkov over terraform/ and infra/ (terraform, kubernetes, dockerfile,
secrets), every skip justified; the Dockerfile and compose file checked
statically (no Docker engine here); every `prescient` flag the manifests use
exists in the CLI."""
import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from conftest import ROOT, http_get, prescient_bin
from test_k8s import K8S, OVERLAYS, VENV_BIN, is_custom, kustomize

DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
COMPOSE = ROOT / "infra" / "compose" / "docker-compose.yml"


def checkov(*args):
    out = subprocess.run([str(VENV_BIN / "checkov"), "--skip-download", "-o", "json", *args],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=dict(os.environ, BC_SKIP_MAPPING="TRUE"))
    reports = json.loads(out.stdout) if out.stdout.strip().startswith(("[", "{")) else None
    assert reports is not None, f"checkov gave no report: {out.stderr[-2000:]}"
    return reports if isinstance(reports, list) else [reports]


def assert_clean(reports, frameworks):
    seen = set()
    for r in reports:
        seen.add(r["check_type"])
        failed = [(f["check_id"], f["resource"], f["file_path"]) for f in r["results"]["failed_checks"]]
        assert not failed, f"checkov {r['check_type']} findings: {failed}"
        for s in r["results"]["skipped_checks"]:
            reason = (s.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason) > 20, f"skip of {s['check_id']} on {s['resource']} lacks a justification"
        assert r["summary"]["passed"] > 0
    assert frameworks <= seen, seen


def test_checkov_terraform_and_secrets():
    assert_clean(checkov("-d", "terraform", "--framework", "terraform", "secrets"), {"terraform"})


def test_checkov_dockerfile_and_secrets_in_infra():
    assert_clean(checkov("-d", "infra", "--framework", "dockerfile", "secrets"), {"dockerfile"})


def test_checkov_kubernetes_on_what_kustomize_renders(tmp_path):
    # What gets applied is the rendered overlay, not the raw base files. The
    # Prometheus Operator objects are left out: their `{{ $labels }}`
    # templates make checkov take the file for a Helm chart and skip it all.
    for overlay in OVERLAYS + ["../keda"]:
        docs = [d for d in kustomize(K8S / overlay) if not d["apiVersion"].startswith("monitoring.coreos.com")]
        (tmp_path / (overlay.replace("/", "_").strip("._") + ".yaml")).write_text(
            yaml.safe_dump_all(docs, sort_keys=False))
    reports = checkov("-d", str(tmp_path), "--framework", "kubernetes")
    assert_clean(reports, {"kubernetes"})
    assert sum(r["summary"]["passed"] for r in reports) > 300


def test_dockerfile_is_multi_stage_non_root_with_healthcheck():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M)
    assert len(stages) >= 2, "multi-stage"
    assert all(":" in image and not image.endswith(":latest") for image, _ in stages), "pinned base images"
    runtime = text.split("FROM ")[-1]
    assert re.search(r"^USER\s+65532", runtime, re.M), "runs as a non-root user"
    assert "HEALTHCHECK" in runtime and "ENTRYPOINT" in runtime
    assert "--locked" in text and "--bin prescient" in text
    for src in re.findall(r"^COPY (?!--from)(\S+)", runtime, re.M):
        assert (ROOT / src).exists(), src
    assert (ROOT / "infra/docker/Dockerfile.dockerignore").exists()


def test_healthcheck_script_against_a_live_healthz(demo):
    script = ROOT / "infra/docker/healthcheck.sh"
    port = demo.metrics_addr.rsplit(":", 1)[1]
    ok = subprocess.run([str(script)], env=dict(os.environ, PRESCIENT_HEALTH_PORT=port), timeout=10)
    assert ok.returncode == 0
    closed = subprocess.run([str(script)], env=dict(os.environ, PRESCIENT_HEALTH_PORT="1"), timeout=10,
                            capture_output=True)
    assert closed.returncode != 0


def test_compose_file_is_coherent():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "dataflow", "forecaster", "dashboard", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]["environment"]
    assert "broker,controller" in kafka["KAFKA_PROCESS_ROLES"], "KRaft, no ZooKeeper"
    for name, svc in services.items():
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pinned image"
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).resolve().exists(), f"{name}: {src}"
    assert services["dataflow"]["build"]["dockerfile"] == "infra/docker/Dockerfile"
    assert (COMPOSE.parent / services["dataflow"]["build"]["context"] / "Cargo.toml").exists()
    # Prometheus' default targets are the compose services and their ports.
    targets_dir = ROOT / "infra/monitoring/prometheus/targets"
    for f in targets_dir.glob("*.yml"):
        for group in yaml.safe_load(f.read_text()):
            for t in group["targets"]:
                host, port = t.split(":")
                assert host in services, t
                assert any(port in " ".join(services[host]["command"]) for _ in [0]), t


def prescient_commands():
    """(subcommand, [flags]) of every prescient invocation in compose and the rendered overlays."""
    cmds = []
    for svc in yaml.safe_load(COMPOSE.read_text())["services"].values():
        if svc.get("image", "").startswith("prescient"):
            cmds.append(svc["command"])
    for overlay in OVERLAYS:
        for d in kustomize(K8S / overlay):
            if d["kind"] in {"StatefulSet", "Deployment"}:
                cmds += [c["args"] for c in d["spec"]["template"]["spec"]["containers"]]
    return [(c[0], [a.split("=")[0] for a in c[1:] if a.startswith("--")]) for c in cmds]


def test_cli_knows_every_flag_the_manifests_pass():
    binary = prescient_bin()
    top = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    checked = 0
    for sub, flags in prescient_commands():
        if not re.search(rf"^\s+{sub}\s", top, re.M):
            # `prescient dashboard` is built on another branch (issue 7); its
            # flags are written against that text.
            assert sub == "dashboard", f"prescient has no subcommand {sub}"
            continue
        help_text = subprocess.run([binary, sub, "--help"], capture_output=True, text=True, check=True).stdout
        for flag in flags:
            assert re.search(rf"(^|\s){re.escape(flag)}[\s,=<]", help_text, re.M), f"prescient {sub}: no {flag}"
            checked += 1
    assert checked >= 6


def run_forecaster_with_policy(policy_text, tmp_path, timeout=5):
    """Starts `prescient forecaster` with the policy against a closed port: a
    policy it rejects fails at once, before any connection attempt. A policy it
    accepts keeps it retrying the database until `timeout` (returns None)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text)
    try:
        out = subprocess.run([prescient_bin(), "forecaster", f"--policy-file={policy}",
                              "--database-url=postgres://prescient@127.0.0.1:1/prescient",
                              "--metrics-addr=127.0.0.1:0"],
                             capture_output=True, text=True, timeout=timeout)
        return out.returncode, out.stderr
    except subprocess.TimeoutExpired:
        return None, ""


def test_shipped_policies_are_accepted_by_the_forecaster(tmp_path):
    configmaps = {d["metadata"]["name"]: d for d in yaml.safe_load_all((K8S / "base/config.yaml").read_text())}
    shipped = {
        "compose": (ROOT / "infra/compose/policy.toml").read_text(),
        "k8s": configmaps["prescient-policy"]["data"]["policy.toml"],
    }
    for where, text in shipped.items():
        code, err = run_forecaster_with_policy(text, tmp_path)
        assert "polic" not in err.lower() or code is None, f"{where} policy rejected: {err}"
    # Control: a misspelt key is rejected with an error about the policy. It
    # fails in about a second; the long timeout is for a loaded 2-core CI
    # machine paging in the 240 MB debug binary cold (a 5 s limit timed out there).
    code, err = run_forecaster_with_policy("[defaults]\nlead_time_minutes = 8\n", tmp_path, timeout=120)
    assert code not in (None, 0) and "lead_time_minutes" in err, err
