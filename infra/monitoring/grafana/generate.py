#!/usr/bin/env python3
"""Generates Prescient's Grafana dashboards (provisioned JSON) into dashboards/.

Run after editing: `python3 infra/monitoring/grafana/generate.py`. The deploy
tests regenerate and compare, so the committed JSON never drifts from this file.
Datasources are referenced by the uids that provisioning/datasources/ creates:
`prometheus` and `prescient-postgres`.
"""
import json
import pathlib

PROM = {"type": "prometheus", "uid": "prometheus"}
PG = {"type": "grafana-postgresql-datasource", "uid": "prescient-postgres"}
OUT = pathlib.Path(__file__).resolve().parent / "dashboards"


class Layout:
    """Places panels left to right, 24 grid units per row."""

    def __init__(self):
        self.x, self.y, self.row_h, self.next_id = 0, 0, 0, 1

    def place(self, panel, w=12, h=8):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel


def prom_target(expr, legend, ref):
    return {"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": ref}


def timeseries(title, targets, unit="short", description="", ds=PROM, overrides=None):
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": ds,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 0}},
            "overrides": overrides or [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
    }


def stat(title, expr, unit="short", description=""):
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": PROM,
        "targets": [prom_target(expr, "", "A")],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area"},
    }


def dashboard(uid, title, description, panels, templating=None, annotations=None):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["prescient"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": templating or []},
        "annotations": {"list": annotations or []},
        "panels": panels,
    }


def pipeline():
    L = Layout()
    r = "$__rate_interval"
    panels = [
        L.place(stat("Components up", 'sum(up{job=~"prescient-.*"})',
                     description="Prescient scrape targets that answer."), w=6, h=4),
        L.place(stat("Events in /s", f"sum(rate(prescient_events_in_total[{r}]))", "reqps"), w=6, h=4),
        L.place(stat("Consumer lag", "sum(prescient_consumer_lag)",
                     description="Messages behind the end of user-events."), w=6, h=4),
        L.place(stat("Freshness p99", "histogram_quantile(0.99, sum by (le) "
                     f"(rate(prescient_freshness_seconds_bucket[{r}])))", "s"), w=6, h=4),
        L.place(timeseries("Events read, late and dead-lettered", [
            prom_target(f"sum by (job) (rate(prescient_events_in_total[{r}]))", "read {{job}}", "A"),
            prom_target(f"sum(rate(prescient_events_late_total[{r}]))", "late (within lateness)", "B"),
            prom_target(f"sum by (reason) (rate(prescient_events_rejected_total[{r}]))",
                        "dead letter: {{reason}}", "C"),
        ], "reqps")),
        L.place(timeseries("Consumer lag by partition", [
            prom_target("sum by (partition) (prescient_consumer_lag)", "partition {{partition}}", "A"),
        ], description="Alert PrescientConsumerLagGrowing: above 10k and growing for 15 min.")),
        L.place(timeseries("Freshness (Kafka timestamp → rows committed)", [
            prom_target("histogram_quantile(0.5, sum by (le) "
                        f"(rate(prescient_freshness_seconds_bucket[{r}])))", "p50", "A"),
            prom_target("histogram_quantile(0.99, sum by (le) "
                        f"(rate(prescient_freshness_seconds_bucket[{r}])))", "p99", "B"),
        ], "s", "SLO: p99 ≤ 30 s (alert PrescientFreshnessOverSLO).")),
        L.place(timeseries("Event-time frontier delay", [
            prom_target("max by (instance) (prescient_watermark_delay_seconds)", "{{instance}}", "A"),
        ], "s", "Wall clock minus the event-time frontier: grows when the frontier stops.")),
        L.place(timeseries("Commits to PostgreSQL", [
            prom_target(f"sum(rate(prescient_commits_total[{r}]))", "commits/s", "A"),
            prom_target(f"sum(rate(prescient_commit_failures_total[{r}]))", "failed attempts/s", "B"),
        ], "ops")),
        L.place(timeseries("Commit duration and size", [
            prom_target("histogram_quantile(0.99, sum by (le) "
                        f"(rate(prescient_commit_duration_seconds_bucket[{r}])))", "p99 duration (s)", "A"),
            prom_target(f"sum(rate(prescient_commit_rows_sum[{r}])) / sum(rate(prescient_commit_rows_count[{r}]))",
                        "rows per commit", "B"),
        ])),
        L.place(timeseries("Open windows held in memory", [
            prom_target("sum by (instance) (prescient_keys_held)", "{{instance}}", "A"),
        ], description="Flat under constant key cardinality: closed buckets are released.")),
        L.place(timeseries("Forecaster ticks", [
            prom_target(f"sum(rate(prescient_forecaster_ticks_total[{r}])) * 60", "ticks/min", "A"),
            prom_target(f"sum(increase(prescient_forecaster_tick_errors_total[{r}]))", "failed ticks", "B"),
            prom_target(f"sum(increase(prescient_scaling_publish_errors_total[{r}]))",
                        "decisions not published", "C"),
            prom_target("max(prescient_forecaster_services)", "services forecast", "D"),
        ])),
        L.place(timeseries("Forecaster tick time", [
            prom_target("histogram_quantile(0.99, sum by (le) "
                        f"(rate(prescient_forecaster_tick_seconds_bucket[{r}])))", "tick p99", "A"),
            prom_target("histogram_quantile(0.99, sum by (le) "
                        f"(rate(prescient_forecaster_forecast_seconds_bucket[{r}])))", "forecast p99", "B"),
        ], "s"), w=24),
    ]
    return dashboard("prescient-pipeline", "Prescient / Pipeline health",
                     "Kafka → dataflow → PostgreSQL → forecaster: throughput, lag, freshness, commits.",
                     panels)


def forecast():
    L = Layout()
    service_var = {
        "name": "service", "label": "Service", "type": "query", "datasource": PG,
        "query": "SELECT DISTINCT service FROM service_minute "
                 "WHERE minute > now() - interval '1 day' ORDER BY 1",
        "refresh": 2, "includeAll": False, "multi": False, "current": {},
    }
    lead_var = {
        "name": "lead", "label": "Lead time (min)", "type": "custom",
        "query": "1,5,8,10,15,30,60",
        "current": {"text": "8", "value": "8"},
        "options": [{"text": v, "value": v, "selected": v == "8"}
                    for v in ["1", "5", "8", "10", "15", "30", "60"]],
        "description": "Forecast horizon shown: the forecast made this many minutes before each minute.",
    }
    sql = lambda ref, q: {"datasource": PG, "refId": ref, "format": "time_series",
                          "rawQuery": True, "editorMode": "code", "rawSql": q}
    band = [
        {"matcher": {"id": "byName", "options": "p90"},
         "properties": [{"id": "custom.fillBelowTo", "value": "p10"},
                        {"id": "custom.fillOpacity", "value": 20},
                        {"id": "custom.lineWidth", "value": 0},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}]},
        {"matcher": {"id": "byName", "options": "p10"},
         "properties": [{"id": "custom.lineWidth", "value": 0},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}]},
        {"matcher": {"id": "byName", "options": "p50"},
         "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [6, 4]}},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}]},
        {"matcher": {"id": "byName", "options": "actual"},
         "properties": [{"id": "custom.lineWidth", "value": 2},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "orange"}}]},
    ]
    panels = [
        L.place(timeseries("$service: requests/min, actual vs forecast at +$lead min (p10–p90)", [
            sql("A", "SELECT minute AS time, requests::double precision AS actual FROM service_minute "
                     "WHERE service = '$service' AND $__timeFilter(minute) ORDER BY 1"),
            sql("B", "SELECT target_minute AS time, p10, p50, p90 FROM forecasts "
                     "WHERE service = '$service' AND horizon_min = $lead "
                     "AND $__timeFilter(target_minute) ORDER BY 1"),
        ], "short", "Shaded: the p10–p90 interval of the forecast made $lead minutes ahead. "
                    "Annotations: scaling decisions (tag predictive or reactive).", PG, band), w=24, h=10),
        L.place(timeseries("$service: desired size", [
            sql("A", "SELECT issued_at AS time, desired::double precision AS desired, "
                     "current_size::double precision AS current FROM scaling_decisions "
                     "WHERE service = '$service' AND $__timeFilter(issued_at) ORDER BY 1"),
        ], "short", "Decisions recorded in scaling_decisions (dry-run or applied).", PG)),
        L.place(timeseries("Decisions by basis", [
            prom_target('sum by (basis) (increase(prescient_scaling_decisions_total{service=~"$service"}'
                        '[$__rate_interval]))', "{{basis}}", "A"),
        ], description="Reactive = fallback (alert PrescientFallbackToReactive).")),
        L.place(timeseries("Live MASE (vs daily seasonal naive)", [
            prom_target('max by (service) (prescient_forecast_live_mase{service=~"$service"})',
                        "{{service}}", "A"),
        ], description="Above 1: worse than seasonal naive (alert PrescientForecastErrorHigh).")),
        L.place(timeseries("p10–p90 interval coverage", [
            prom_target('max by (service) (prescient_forecast_interval_coverage{service=~"$service"})',
                        "{{service}}", "A"),
        ], "percentunit", "Share of actuals inside p10..p90; 0.8 is calibrated.")),
    ]
    annotations = [{
        "name": "Scaling decisions", "enable": True, "iconColor": "purple", "datasource": PG,
        "rawQuery": "SELECT issued_at AS time, "
                    "format('%s → %s: %s', current_size, desired, reason) AS text, "
                    "CASE WHEN fallback THEN 'reactive' ELSE 'predictive' END AS tags "
                    "FROM scaling_decisions WHERE service = '$service' "
                    "AND $__timeFilter(issued_at) ORDER BY 1",
        "target": {"refId": "Anno", "rawQuery": True, "format": "table", "editorMode": "code",
                   "rawSql": "SELECT issued_at AS time, "
                             "format('%s → %s: %s', current_size, desired, reason) AS text, "
                             "CASE WHEN fallback THEN 'reactive' ELSE 'predictive' END AS tags "
                             "FROM scaling_decisions WHERE service = '$service' "
                             "AND $__timeFilter(issued_at) ORDER BY 1"},
    }]
    return dashboard("prescient-forecast", "Prescient / Forecast vs actual",
                     "Actual requests per minute against the forecast at the lead time, its p10–p90 band, "
                     "and the scaling decisions made from it.",
                     panels, [service_var, lead_var], annotations)


def main():
    OUT.mkdir(exist_ok=True)
    for name, board in [("prescient-pipeline.json", pipeline()), ("prescient-forecast.json", forecast())]:
        (OUT / name).write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
