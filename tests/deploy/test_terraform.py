"""terraform/: checked as strictly as `terraform validate` would, without
Terraform's providers (unreachable here): every file parses (python-hcl2),
every reference resolves, module inputs match the modules' variables,
variables are typed, described and used, versions are pinned, and every
resource's arguments and blocks exist in the AWS provider schema of the pinned
version (extracted from @cdktn/provider-aws into aws_schema/aws-provider.json)
with the required ones set."""
import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / ".venv" / "python-hcl2"))
import hcl2  # noqa: E402  (python-hcl2 8.x, installed apart from checkov's bc-python-hcl2 fork)

TF = ROOT / "terraform"
SCHEMA = json.loads((ROOT / "tests/deploy/aws_schema/aws-provider.json").read_text())
MODULE_DIRS = sorted({p.parent for p in TF.rglob("*.tf")})
META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}


def unq(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def clean(d):
    return {unq(k): v for k, v in d.items() if not k.startswith("__")}


class Module:
    """Everything declared in one directory of .tf files."""

    def __init__(self, path):
        self.path = path
        self.files = {f.name: hcl2.load(f.open()) for f in sorted(path.glob("*.tf"))}
        self.variables, self.locals, self.outputs, self.modules = {}, {}, {}, {}
        self.resources, self.data, self.terraform = {}, {}, []
        for doc in self.files.values():
            for v in doc.get("variable", []):
                self.variables.update({unq(k): clean(b) for k, b in v.items()})
            for block in doc.get("locals", []):
                self.locals.update(clean(block))
            for o in doc.get("output", []):
                self.outputs.update({unq(k): clean(b) for k, b in o.items()})
            for m in doc.get("module", []):
                self.modules.update({unq(k): clean(b) for k, b in m.items()})
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for r in doc.get(kind, []):
                    for typ, named in r.items():
                        for name, body in named.items():
                            target[(unq(typ), unq(name))] = body
            self.terraform += doc.get("terraform", [])
        self.text = json.dumps(self.files)


MODULES = {p: Module(p) for p in MODULE_DIRS}


def ids(p):
    return str(p.relative_to(TF))


def test_layout_follows_terraform_aws_modules_conventions():
    names = [ids(p) for p in MODULE_DIRS]
    assert "environments/example" in names
    assert {"modules/network", "modules/msk", "modules/rds", "modules/eks", "modules/ecr", "modules/functions"} <= set(names)
    for p in MODULE_DIRS:
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= {f.name for f in p.glob("*.tf")}, ids(p)
    assert (TF / "environments/example/terraform.tfvars.example").exists()


@pytest.mark.parametrize("path", MODULE_DIRS, ids=ids)
def test_versions_are_pinned(path):
    tf = MODULES[path].terraform
    assert tf and "required_version" in tf[0], "required_version"
    aws = tf[0]["required_providers"][0]["aws"]
    assert unq(aws["source"]) == "hashicorp/aws"
    constraint = unq(aws["version"])
    major = SCHEMA["version"].split(".")[0]
    if ids(path).startswith("environments"):
        # The root pins the exact minor the schema was extracted for.
        assert constraint == "~> " + SCHEMA["version"], constraint
    else:
        assert re.fullmatch(rf">= {major}\.\d+, < {int(major) + 1}\.0", constraint), constraint


@pytest.mark.parametrize("path", MODULE_DIRS, ids=ids)
def test_variables_are_typed_described_and_used(path):
    m = MODULES[path]
    for name, v in m.variables.items():
        assert "type" in v, f"variable {name} has no type"
        assert unq(v.get("description", "")).strip(), f"variable {name} has no description"
    used = set(re.findall(r"\bvar\.(\w+)", m.text))
    assert set(m.variables) - used == set(), "unused variables"
    assert used - set(m.variables) == set(), "var. references to undeclared variables"
    for name, o in m.outputs.items():
        assert unq(o.get("description", "")).strip(), f"output {name} has no description"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=ids)
def test_every_reference_resolves(path):
    m = MODULES[path]
    text = m.text
    assert set(re.findall(r"\blocal\.(\w+)", text)) <= set(m.locals), "local. references"
    for name, out in re.findall(r"\bmodule\.(\w+)\.(\w+)", text):
        assert name in m.modules, f"module.{name}"
        callee = MODULES[(path / unq(m.modules[name]["source"])).resolve()]
        assert out in callee.outputs, f"module.{name}.{out} is not an output of {callee.path.name}"
    for typ, name, attr in re.findall(r"\bdata\.(aws_\w+)\.(\w+)(?:\[[^\]]*\])*\.(\w+)", text):
        assert (typ, name) in m.data, f"data.{typ}.{name}"
        assert attr in SCHEMA["data"][typ]["attrs"], f"data.{typ}.{name}.{attr} is no attribute"
    for typ, name, attr in re.findall(r"(?<![\w.])(aws_\w+)\.(\w+)(?:\[[^\]]*\])*\.(\w+)", text):
        assert (typ, name) in m.resources, f"{typ}.{name} is not declared"
        assert attr in SCHEMA["resource"][typ]["attrs"], f"{typ}.{name}.{attr} is no attribute"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=ids)
def test_module_calls_match_the_modules_variables(path):
    m = MODULES[path]
    for name, call in m.modules.items():
        source = (path / unq(call["source"])).resolve()
        assert source in MODULES, f"module {name}: source {source} has no .tf files"
        callee = MODULES[source]
        passed = set(call) - {"source", "version", "providers", "depends_on", "count", "for_each"}
        assert passed - set(callee.variables) == set(), f"module {name}: unknown inputs"
        required = {v for v, body in callee.variables.items() if "default" not in body}
        assert required - passed == set(), f"module {name}: required inputs not passed"
    if ids(path).startswith("environments"):
        called = {(path / unq(c["source"])).resolve() for c in m.modules.values()}
        assert {p for p in MODULE_DIRS if "modules" in p.parts} <= called, "every module is used by the example"


def check_block(body, schema, where):
    body = {unq(k): v for k, v in body.items() if not k.startswith("__")}
    for key, value in body.items():
        if key in META:
            continue
        if key in schema["blocks"]:
            blocks = value if isinstance(value, list) else [value]
            for b in blocks:
                assert isinstance(b, dict) and b.get("__is_block__"), f"{where}.{key} must be a block"
                check_block(b, schema["blocks"][key], f"{where}.{key}")
        else:
            assert key in schema["args"], f"{where}: unknown argument or block {key!r}"
            assert not (isinstance(value, list) and value and isinstance(value[0], dict)
                        and value[0].get("__is_block__")), f"{where}.{key} is an argument, not a block"
    for key, a in schema["args"].items():
        assert not a["required"] or key in body, f"{where}: required argument {key!r} missing"
    for key, b in schema["blocks"].items():
        assert not b.get("required") or key in body, f"{where}: required block {key!r} missing"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=ids)
def test_resources_match_the_aws_provider_schema(path):
    m = MODULES[path]
    for kind, declared in (("resource", m.resources), ("data", m.data)):
        for (typ, name), body in declared.items():
            assert typ in SCHEMA[kind], f"{kind} {typ}: not in the schema (rerun tests/deploy/aws_schema/extract.py)"
            check_block(body, SCHEMA[kind][typ], f"{typ}.{name}")


def test_schema_check_catches_mistakes():
    schema = SCHEMA["resource"]["aws_msk_cluster"]
    good = MODULES[TF / "modules/msk"].resources[("aws_msk_cluster", "this")]
    check_block(good, schema, "ok")
    with pytest.raises(AssertionError, match="unknown argument"):
        check_block({**good, "broker_count": 3}, schema, "typo")
    with pytest.raises(AssertionError, match="required argument 'kafka_version'"):
        check_block({k: v for k, v in good.items() if k != "kafka_version"}, schema, "missing")
    nested = json.loads(json.dumps(good))
    nested["encryption_info"][0]["encryption_in_transit"][0]["client_brokers"] = "TLS"
    with pytest.raises(AssertionError, match="client_brokers"):
        check_block(nested, schema, "nested")


def test_schema_json_is_extracted_for_exactly_the_types_used():
    used = {(k, t) for mod in MODULES.values() for k, decl in (("resource", mod.resources), ("data", mod.data))
            for t, _ in decl}
    assert used == {(k, t) for k in ("resource", "data") for t in SCHEMA[k]}
    assert SCHEMA["source"].startswith("@cdktn/provider-aws@")


def test_security_properties_the_issue_asks_for():
    msk = MODULES[TF / "modules/msk"].resources[("aws_msk_cluster", "this")]
    assert msk["client_authentication"][0]["sasl"][0]["iam"] is True
    assert msk["client_authentication"][0]["unauthenticated"] is False
    assert unq(msk["encryption_info"][0]["encryption_in_transit"][0]["client_broker"]) == "TLS"
    db = MODULES[TF / "modules/rds"].resources[("aws_db_instance", "this")]
    assert db["storage_encrypted"] is True and db["publicly_accessible"] is False
    assert db["manage_master_user_password"] is True and db["deletion_protection"] == "${var.deletion_protection}"
    fn = MODULES[TF / "modules/functions"]
    esm = fn.resources[("aws_lambda_event_source_mapping", "decisions")]
    assert [unq(x) for x in esm["function_response_types"]] == ["ReportBatchItemFailures"]
    assert [unq(x) for x in esm["topics"]] == ["scaling-decisions"]
    for f in ("scaler", "notifier"):
        lam = fn.resources[("aws_lambda_function", f)]
        assert [unq(x) for x in lam["architectures"]] == ["arm64"]
    for t in ("actions", "alerts"):
        assert "kms_master_key_id" in fn.resources[("aws_sns_topic", t)]
    # Least privilege: no statement of the functions grants EKS, SNS, Secrets or Kafka on "*".
    for pol in ("scaler", "notifier"):
        for st in fn.data[("aws_iam_policy_document", pol)].get("statement", []):
            resources = [unq(r) for r in (st["resources"] if isinstance(st["resources"], list) else [st["resources"]])]
            if any(unq(a).split(":")[0] in {"eks", "sns", "secretsmanager", "kafka-cluster", "kafka"} for a in st["actions"]):
                assert "*" not in resources, st
    eks = MODULES[TF / "modules/eks"].resources
    assert ("aws_eks_access_entry", "scaler") in eks


def test_terraform_fmt_when_terraform_is_installed():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on this machine (the HCL checks above still ran)")
    out = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(TF)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
