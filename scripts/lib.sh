# Shared by scripts/demo and scripts/test: install what a fresh Debian machine lacks.

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# apt_install PACKAGE...: installs the packages (one apt-get update first).
apt_install() {
  echo "==> installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# ensure_postgres: PostgreSQL's server binaries (initdb, pg_ctl) for the private database.
ensure_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
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
