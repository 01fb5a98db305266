//! `prescient demo`, the README's first command, end to end.

mod common;

#[test]
fn demo_runs_everything_and_fills_the_tables() {
    let out = common::prescient()
        .args([
            "demo",
            "--duration",
            "25s",
            "--rate",
            "400",
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
}
