//! The built web app (`dashboard/web/dist`): static files, and `index.html`
//! for client-side routes. When it is not built, a page says how.

use std::path::Path;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodRouter, get};
use tower_http::services::{ServeDir, ServeFile};

const NOT_BUILT: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Prescient dashboard</title></head>
<body><main><h1>The dashboard's web app is not built</h1>
<p>The API is up (<a href="/api/openapi.json">/api/openapi.json</a>). Build the page with</p>
<pre>cd dashboard/web &amp;&amp; npm ci &amp;&amp; npx vite build</pre>
<p>(<code>./scripts/demo</code> does this for you), or point <code>--web-dir</code> at a built copy.</p></main></body></html>"#;

/// Serves `dir` with an `index.html` fallback, or the "not built" page.
pub(crate) fn service(dir: &Path) -> MethodRouter {
    let index = dir.join("index.html");
    if index.exists() {
        axum::routing::get_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
    } else {
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response() })
    }
}
