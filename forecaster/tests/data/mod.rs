//! Where the real data of `../shared/data` is, for the tests that read it
//! (each test file uses one of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A NAB data file under `../shared/data/nab/data/`.
pub(crate) fn nab_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/nab/data")
        .join(rel)
}

/// The NASA KSC per-minute trace (`../shared/data/nasa`, two months of real
/// web traffic at one-minute resolution).
pub(crate) fn nasa_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/nasa/nasa_http_1995_per_minute.csv")
}
