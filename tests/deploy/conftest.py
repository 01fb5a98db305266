"""Shared fixtures of the deploy tests: the repository root, free ports, and a
running `prescient demo` (broker, private PostgreSQL, generator, dataflow,
forecaster) whose /metrics and database the monitoring tests check against."""
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def prescient_bin():
    """The `prescient` binary: $PRESCIENT_BIN, else target/debug (built if missing)."""
    env = os.environ.get("PRESCIENT_BIN")
    if env:
        return env
    path = ROOT / "target" / "debug" / "prescient"
    if not path.exists():
        subprocess.run(["cargo", "build", "--bin", "prescient"], cwd=ROOT, check=True)
    return str(path)


class Demo:
    def __init__(self, proc, metrics_addr, database_url, log):
        self.proc, self.metrics_addr, self.database_url, self.log = proc, metrics_addr, database_url, log

    def metrics(self):
        return http_get(f"http://{self.metrics_addr}/metrics")

    def families(self):
        """Metric family names the demo's /metrics declares (# TYPE lines)."""
        return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", self.metrics(), re.M)}

    def psql(self, sql):
        out = subprocess.run(["psql", self.database_url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"psql failed on {sql!r}: {out.stderr}")
        return [line for line in out.stdout.splitlines() if line]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`prescient demo` on a free metrics port, running until the session ends.

    Ready once every metric family the monitoring files rely on has appeared
    (label-vector families appear on first use; the forecaster's accuracy
    gauges need a scored forecast, hence the short --forecast-after-min)."""
    if shutil.which("psql") is None:
        pytest.fail("psql (Debian postgresql-client) is needed")
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    logf = open(log, "w")
    env = dict(os.environ, RUST_LOG="warn")
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [prescient_bin(), "demo", "--metrics-addr", f"127.0.0.1:{port}", "--rate", "300",
         "--status-every", "5", "--forecast-after-min", "1", "--bad-ratio", "0.01"],
        stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    database_url = None
    deadline = time.time() + 90
    try:
        while time.time() < deadline and database_url is None:
            if proc.poll() is not None:
                pytest.fail(f"demo exited: {log.read_text()}")
            m = re.search(r"PostgreSQL\s+: (postgres://\S+)", log.read_text())
            database_url = m.group(1) if m else None
            time.sleep(0.5)
        assert database_url, f"demo printed no database URL: {log.read_text()}"
        d = Demo(proc, f"127.0.0.1:{port}", database_url, log)
        while time.time() < deadline:
            try:
                if "prescient_events_in_total" in d.families():
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"demo /metrics never served prescient_events_in_total: {log.read_text()}")
        yield d
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
