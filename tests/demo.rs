//! `prescient demo`, the README's first command, end to end.

mod common;

#[test]
fn demo_runs_everything_and_fills_the_tables() {
    let out = common::prescient()
        .args([
            "demo",
            "--duration",
            "45s",
            "--rate",
            "400",
            "--backfill",
            "8m",
            "--forecast-after-min",
            "3",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--status-every",
            "5",
        ])
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run prescient demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Kafka bootstrap servers : 127.0.0.1:"),
        "prints the broker address:\n{stdout}"
    );
    assert!(
        stdout.contains("PostgreSQL              : postgres://"),
        "prints the database URL:\n{stdout}"
    );
    let final_line = stdout
        .lines()
        .find(|l| l.starts_with("final:"))
        .expect("a final status line");
    let number_after = |label: &str| -> i64 {
        let rest = &final_line[final_line
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {final_line}"))
            + label.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(number_after("events in") > 2_000, "{final_line}");
    assert!(number_after("metrics_minute") > 0, "{final_line}");
    assert!(number_after("service_minute") > 0, "{final_line}");
    // Once the backfill is read the forecaster plans for live minutes: its
    // decisions use a forecast, and the scaler's dry run acts on them rather
    // than skipping them as expired (what every decision of a demo still
    // reading its backfill gets).
    assert!(number_after("predictive") > 0, "{final_line}");
    let outcomes = final_line
        .split("actions (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("scaler outcomes in {final_line}"));
    let live: i64 = outcomes
        .split(", ")
        .filter_map(|o| o.rsplit_once(' '))
        .filter(|(name, _)| *name != "skipped-stale")
        .map(|(_, n)| n.parse::<i64>().unwrap())
        .sum();
    assert!(
        live > 0,
        "no decision reached the scaler in time: {final_line}"
    );
}
