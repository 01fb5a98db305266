//! The one retry schedule every reconnect and retry loop uses: exponential
//! from `min` to `max`, with jitter (so many clients that lost the same
//! server do not come back in step), and no limit on attempts (a loop
//! decides itself when to give up). Built on `backon`.
//!
//! ```
//! use std::time::Duration;
//!
//! let mut delays = prescient_connect::backoff::exponential(
//!     Duration::from_millis(100),
//!     Duration::from_secs(2),
//! );
//! let first = delays.next().unwrap();
//! assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
//! assert!(delays.take(20).all(|d| d <= Duration::from_secs(4)));
//! ```

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays for one retry episode (start a new one after a success): `min`,
/// then doubling up to `max`, each plus a random jitter of up to itself.
pub fn exponential(min: Duration, max: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}
