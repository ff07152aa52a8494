//! `GET /api/pprof`: a heap profile of the process, of one connection (`?conn=ID`) or of one
//! route (`?route=LABEL`), as a download: pprof's `profile.proto`, uncompressed
//! (`leakscope::heap_profile`), estimated from sampled allocations (`LEAKSCOPE_SAMPLE_BYTES`).

use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leakscope::ProfileOf;

use crate::error::{DashError, DashResult, shown};
use crate::query::Params;

/// Whose live bytes the query asks for: `conn=ID`, `route=LABEL`, or neither (the process).
fn target(p: &Params) -> Result<ProfileOf, DashError> {
    match (p.id("conn")?, p.get("route")) {
        (Some(_), Some(_)) => Err(DashError::bad_request(
            "give conn=ID or route=LABEL, not both (neither: the whole process)",
        )),
        (Some(id), None) => Ok(ProfileOf::Connection(id)),
        (None, Some("")) => Err(DashError::bad_request(
            "query parameter route=\"\": expected a route label (e.g. route=/ws)",
        )),
        (None, Some(label)) => Ok(ProfileOf::Route(label.to_owned())),
        (None, None) => Ok(ProfileOf::Process),
    }
}

/// Why there is no profile of `of`: tracking is off (`enabled` false, or no profile of the
/// process), or the connection is not tracked.
fn missing(of: &ProfileOf, enabled: bool) -> DashError {
    match of {
        ProfileOf::Connection(id) if enabled => DashError::not_found(format!(
            "connection {id} is not tracked: it never existed, or it closed cleanly and was \
             evicted after the retention period"
        )),
        _ => DashError::not_found(
            "no heap profile: leakscope's tracking is off (its `enabled` feature is not on \
             in this build)",
        ),
    }
}

/// The profile of `of`; a route must have a tracked connection.
fn build(of: &ProfileOf) -> DashResult<Vec<u8>> {
    if let ProfileOf::Route(label) = of {
        let snap = leakscope::snapshot();
        if !snap.connections.iter().any(|c| c.label == *label) {
            return Err(DashError::not_found(format!(
                "no tracked connection has the route {}: no heap profile to show",
                shown(label)
            )));
        }
    }
    leakscope::heap_profile(of.clone()).ok_or_else(|| missing(of, true))
}

/// A route label as part of a file name: letters, digits and `_`, other runs as one `-`.
fn file_part(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars().take(64) {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() { "root" } else { out }.to_owned()
}

/// `leakscope-process.pb`, `leakscope-conn-42.pb`, `leakscope-route-ws-chat.pb`.
fn file_name(of: &ProfileOf) -> String {
    match of {
        ProfileOf::Process => "leakscope-process.pb".to_owned(),
        ProfileOf::Connection(id) => format!("leakscope-conn-{id}.pb"),
        ProfileOf::Route(label) => format!("leakscope-route-{}.pb", file_part(label)),
    }
}

/// The profile as a download.
fn download(of: &ProfileOf, profile: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", file_name(of));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        profile,
    )
        .into_response()
}

/// `GET /api/pprof?conn=ID|route=LABEL`.
pub(crate) async fn pprof(RawQuery(q): RawQuery) -> DashResult<Response> {
    let of = target(&Params::parse(q.as_deref(), &["conn", "route"])?)?;
    if !leakscope::ENABLED {
        return Err(missing(&of, false));
    }
    // Symbolizing the samples may take a while the first time: off the runtime's workers.
    let built = tokio::task::spawn_blocking(move || {
        let profile = leakscope::untracked(|| build(&of));
        (of, profile)
    })
    .await;
    let (of, profile) = built.map_err(|_| {
        DashError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "leakscope dashboard: the heap profile was not built (the runtime is shutting down)",
        )
    })?;
    Ok(download(&of, profile?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(q: &str) -> Result<ProfileOf, String> {
        let p = Params::parse(Some(q), &["conn", "route"]).map_err(|e| e.message)?;
        target(&p).map_err(|e| e.message)
    }

    #[test]
    fn one_target_or_a_clear_400() {
        assert_eq!(of(""), Ok(ProfileOf::Process));
        assert_eq!(of("conn=42"), Ok(ProfileOf::Connection(42)));
        assert_eq!(of("route=%2Fws+x"), Ok(ProfileOf::Route("/ws x".into())));
        assert!(of("conn=1&route=/ws").unwrap_err().contains("not both"));
        assert!(
            of("conn=x")
                .unwrap_err()
                .contains("conn=\"x\": expected an id")
        );
        assert!(of("conn=").unwrap_err().contains("expected an id"));
        assert!(of("route=").unwrap_err().contains("expected a route label"));
        assert!(of("pid=1").unwrap_err().contains("unknown query parameter"));
    }

    #[test]
    fn feature_off_says_tracking_is_off() {
        for of in [
            ProfileOf::Process,
            ProfileOf::Connection(1),
            ProfileOf::Route("/ws".into()),
        ] {
            let e = missing(&of, false);
            assert_eq!(e.status, StatusCode::NOT_FOUND);
            assert!(e.message.contains("tracking is off"), "{}", e.message);
        }
        let e = missing(&ProfileOf::Connection(7), true);
        assert!(e.message.contains("connection 7 is not tracked"));
    }

    #[test]
    fn downloads_name_their_target() {
        let r = download(&ProfileOf::Route("/ws/\"x\"\r\n".into()), vec![1, 2]);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        assert_eq!(
            r.headers()[header::CONTENT_DISPOSITION],
            "attachment; filename=\"leakscope-route-ws-x.pb\""
        );
        assert_eq!(file_name(&ProfileOf::Process), "leakscope-process.pb");
        assert_eq!(file_name(&ProfileOf::Connection(9)), "leakscope-conn-9.pb");
        assert_eq!(file_part("/"), "root");
        assert_eq!(file_part("/ws/leaky/forwarder"), "ws-leaky-forwarder");
    }
}
