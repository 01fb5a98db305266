# Shared by scripts/demo and scripts/test: install what a fresh Debian machine lacks.

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# apt_install PACKAGE...: installs the packages (one apt-get update first).
apt_install() {
  echo "==> installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# ensure_build_deps: what compiling librdkafka with TLS (rdkafka's `ssl`
# feature) needs: OpenSSL headers and pkg-config; and the `openssl` CLI the
# TLS tests make certificates with.
ensure_build_deps() {
  if ! { command -v pkg-config >/dev/null && pkg-config --exists openssl && command -v openssl >/dev/null; }; then
    apt_install pkg-config libssl-dev openssl
  fi
}

# ensure_postgres: PostgreSQL's server binaries (initdb, pg_ctl) for the private database.
ensure_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
}

# ensure_deploy_tools: what tests/deploy needs (idempotent): promtool and
# prometheus (Debian prometheus), kubectl (Debian kubernetes-client), psql,
# Python tools in .venv (pytest, PyYAML, kubernetes-validate, checkov, and
# python-hcl2 in .venv/python-hcl2, apart from checkov's bc-python-hcl2 fork
# that installs under the same module name), and the npm packages that carry
# the KEDA / Prometheus Operator CRD schemas.
ensure_deploy_tools() {
  command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install prometheus
  command -v kubectl >/dev/null || apt_install kubernetes-client
  command -v psql >/dev/null || apt_install postgresql-client
  command -v npm >/dev/null || apt_install npm
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if ! .venv/bin/python -c 'import pytest, yaml, kubernetes_validate' 2>/dev/null || [ ! -x .venv/bin/checkov ]; then
    echo "==> installing deploy test tools into .venv"
    # Pinned to the versions the checks were written against (new checkov
    # releases add checks).
    .venv/bin/pip install -q --disable-pip-version-check pytest pyyaml 'kubernetes-validate==1.37.0' 'checkov==3.1.47'
  fi
  if [ ! -d .venv/python-hcl2/hcl2 ]; then
    .venv/bin/pip install -q --disable-pip-version-check --target .venv/python-hcl2 'python-hcl2==8.1.4'
  fi
  if [ ! -d tests/deploy/crd/node_modules/@kubernetes-models ]; then
    (cd tests/deploy/crd && npm ci --no-audit --no-fund --silent)
  fi
}

# forecaster_bench_venv: statsforecast (and numpy, pandas) in .venv for
# forecaster/benches/compare.py, the side-by-side benchmark (not run by scripts/test).
forecaster_bench_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if ! .venv/bin/python -c 'import statsforecast, pandas, numpy' >/dev/null 2>&1; then
    echo "==> installing statsforecast into .venv"
    .venv/bin/pip install -q --disable-pip-version-check statsforecast pandas numpy
  fi
}

# ensure_schemathesis: schemathesis (OpenAPI fuzzing of the dashboard API) in .venv;
# exports SCHEMATHESIS for dashboard/tests/openapi.rs.
ensure_schemathesis() {
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if [ ! -x .venv/bin/schemathesis ]; then
    echo "==> installing schemathesis into .venv"
    .venv/bin/pip install -q --disable-pip-version-check 'schemathesis>=4,<5'
  fi
  export SCHEMATHESIS="$PWD/.venv/bin/schemathesis"
}

# ensure_web_assets: the dashboard's web app in dashboard/web/dist, built
# (npm ci + vite build) when missing or older than its sources.
ensure_web_assets() {
  local web=dashboard/web
  [ -f "$web/package.json" ] || { echo "==> $web has no package.json: the dashboard serves its API only"; return 0; }
  if [ -f "$web/dist/index.html" ] && [ -z "$(find "$web/src" "$web/index.html" "$web/package-lock.json" \
       -newer "$web/dist/index.html" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  echo "==> building the dashboard web app ($web: npm ci && vite build)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error && npx --no-install vite build)
}
