//! The dashboard's error type: a status code and a message for humans, as plain text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A failed request: 400 for bad input, 404 for unknown ids, 500 when rendering failed.
#[derive(Debug)]
pub(crate) struct DashError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl DashError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DashError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<askama::Error> for DashError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(target: "leakscope", "dashboard: rendering a page failed: {e}");
        DashError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("leakscope dashboard: rendering the page failed: {e}"),
        )
    }
}

impl From<serde_json::Error> for DashError {
    fn from(e: serde_json::Error) -> Self {
        DashError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("leakscope dashboard: encoding JSON failed: {e}"),
        )
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }
}

/// A handler's result.
pub(crate) type DashResult<T> = Result<T, DashError>;

/// At most this many characters of a client's input are echoed in a message.
const SHOWN_CHARS: usize = 64;

/// `value` quoted for a message, cut after [`SHOWN_CHARS`] characters: a message never grows
/// with what a client sent.
pub(crate) fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn long_input_is_cut() {
        assert_eq!(shown("abc"), "\"abc\"");
        let long = "é".repeat(10_000);
        let s = shown(&long);
        assert!(s.len() < 200, "{s}");
        assert!(s.ends_with("… (20000 bytes)"), "{s}");
    }
}
