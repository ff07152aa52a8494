//! The post-mortem report: the one value behind `GET /api/report`, and the report files (the
//! same JSON, plus an HTML viewer beside it that renders it offline) written on demand
//! ([`write_report`], `POST /api/report/save`) and at a graceful shutdown ([`OnShutdown`]).

mod html;
mod open;
mod shutdown;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub(crate) use html::render as render_html;
pub use html::report_html;
pub use open::report_router;
pub(crate) use shutdown::OnShutdown;

use crate::sampler;

/// The configuration part of a report.
#[derive(Serialize)]
struct ConfigInfo {
    grace_ms: u64,
    retention_ms: u64,
    max_closed_connections: usize,
    max_leaking_connections: usize,
    max_ended_tasks_per_connection: usize,
    retained_bytes_threshold: u64,
}

/// How this process was built.
#[derive(Serialize)]
struct BuildInfo {
    dashboard_version: &'static str,
    leakscope_enabled: bool,
    tokio_unstable: bool,
    taskdump: bool,
    debug_assertions: bool,
    target_os: &'static str,
    target_arch: &'static str,
}

/// Everything for a post-mortem: the JSON of `GET /api/report` and of the report file. Its
/// field names are a public contract (add-only).
#[derive(Serialize)]
pub(crate) struct Report {
    pub(crate) generated_at_ms: u64,
    snapshot: leakscope::Snapshot,
    history: sampler::History,
    config: ConfigInfo,
    build: BuildInfo,
}

impl ConfigInfo {
    fn current() -> ConfigInfo {
        let c = leakscope::config();
        ConfigInfo {
            grace_ms: c.grace.as_millis() as u64,
            retention_ms: c.retention.as_millis() as u64,
            max_closed_connections: c.max_closed_connections,
            max_leaking_connections: c.max_leaking_connections,
            max_ended_tasks_per_connection: c.max_ended_tasks_per_connection,
            retained_bytes_threshold: c.retained_bytes_threshold,
        }
    }
}

impl BuildInfo {
    const THIS: BuildInfo = BuildInfo {
        dashboard_version: env!("CARGO_PKG_VERSION"),
        leakscope_enabled: leakscope::ENABLED,
        tokio_unstable: cfg!(tokio_unstable),
        taskdump: crate::dump::AVAILABLE,
        debug_assertions: cfg!(debug_assertions),
        target_os: std::env::consts::OS,
        target_arch: std::env::consts::ARCH,
    };
}

impl Report {
    /// The report now: a full snapshot, the sampler's history, the configuration, the build.
    pub(crate) fn now() -> Report {
        let config = ConfigInfo::current();
        let snapshot = leakscope::snapshot();
        Report {
            generated_at_ms: snapshot.taken_at_ms,
            history: sampler::history(),
            config,
            build: BuildInfo::THIS,
            snapshot,
        }
    }

    /// The JSON of `GET /api/report` and of the report file (pretty-printed).
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// The two files [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportFiles {
    /// The JSON of `GET /api/report`.
    pub json: PathBuf,
    /// The same report as one self-contained HTML file (the JSON path with `.html`).
    pub html: PathBuf,
}

/// Why a report could not be written (or read).
#[derive(Debug)]
#[non_exhaustive]
pub enum ReportError {
    /// No path was given and none is configured (`LEAKSCOPE_REPORT`, `Builder::report`).
    NoPath,
    /// The JSON path ends in `.html`, where the HTML viewer goes.
    HtmlPath(PathBuf),
    /// Writing (or reading) this file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// Encoding the report as JSON failed.
    Encode(serde_json::Error),
    /// The text is not a leakscope report's JSON: why.
    NotAReport(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::NoPath => f.write_str(
                "leakscope report: no report path configured: set LEAKSCOPE_REPORT (e.g. \
                 LEAKSCOPE_REPORT=leakscope-report.json) or leakscope::Builder::report, or give \
                 write_report a path",
            ),
            ReportError::HtmlPath(p) => write!(
                f,
                "leakscope report: the report path {} ends in .html, the name of the HTML \
                 viewer written beside the JSON: name the JSON file (e.g. leakscope-report.json)",
                p.display()
            ),
            ReportError::Io { path, source } => {
                write!(f, "leakscope report: {}: {source}", path.display())?;
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                match source.kind() {
                    io::ErrorKind::NotFound => {
                        write!(f, " (does the directory {} exist?)", dir.display())
                    }
                    io::ErrorKind::PermissionDenied => {
                        write!(f, " (may this process write in {}?)", dir.display())
                    }
                    _ => Ok(()),
                }
            }
            ReportError::Encode(e) => write!(f, "leakscope report: encoding the JSON failed: {e}"),
            ReportError::NotAReport(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Io { source, .. } => Some(source),
            ReportError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

/// Writes the post-mortem report now: the JSON of `GET /api/report` at `path` (or, with
/// `None`, at the configured path: `LEAKSCOPE_REPORT`, `leakscope::Builder::report`), and beside
/// it the same report as one self-contained HTML file (`path` with the extension `.html`) that
/// renders it offline: no server, nothing fetched. Each file is written whole or not at all
/// (a temporary file in the same directory, then renamed over the old one).
///
/// ```no_run
/// let files = leakscope_dashboard::write_report(Some(std::path::Path::new("leaks.json")))?;
/// assert_eq!(files.html, std::path::Path::new("leaks.html"));
/// # Ok::<(), leakscope_dashboard::ReportError>(())
/// ```
///
/// Blocking (a full snapshot and two files): from async code, call it on the blocking pool.
/// Errors name the file and, for a missing directory or a permission, say so; nothing else
/// fails (an HTML file that cannot be written leaves the JSON written).
pub fn write_report(path: Option<&Path>) -> Result<ReportFiles, ReportError> {
    let json_path = match path {
        Some(p) => p.to_owned(),
        None => leakscope::config().report.ok_or(ReportError::NoPath)?,
    };
    let html_path = html_path(&json_path)?;
    // What a report costs (a snapshot, two copies of its text) is no connection's.
    leakscope::untracked(|| {
        let json = Report::now().to_json().map_err(ReportError::Encode)?;
        write_atomic(&json_path, json.as_bytes())?;
        write_atomic(&html_path, render_html(&json).as_bytes())?;
        Ok(ReportFiles {
            json: json_path,
            html: html_path,
        })
    })
}

/// Where the HTML goes: the JSON path with `.html`.
fn html_path(json: &Path) -> Result<PathBuf, ReportError> {
    if json.file_name().is_none() {
        return Err(ReportError::Io {
            path: json.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        });
    }
    if json
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html"))
    {
        return Err(ReportError::HtmlPath(json.to_owned()));
    }
    Ok(json.with_extension("html"))
}

/// Writes `bytes` to a new file beside `path`, flushes it to disk, and renames it to `path`:
/// a reader sees the old file or the new one, never a part.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let err = |source| ReportError::Io {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = path.with_file_name(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_goes_beside_the_json() {
        let p = html_path(Path::new("/tmp/r.json")).expect("a JSON path");
        assert_eq!(p, Path::new("/tmp/r.html"));
        assert_eq!(
            html_path(Path::new("report")).expect("no extension"),
            Path::new("report.html")
        );
        let e = html_path(Path::new("r.HTML")).expect_err("the HTML's own name");
        assert!(e.to_string().contains("ends in .html"), "{e}");
        assert!(html_path(Path::new("/")).is_err());
    }

    #[test]
    fn errors_name_the_path_and_the_likely_cause() {
        let dir =
            std::env::temp_dir().join(format!("leakscope-no-such-dir-{}", std::process::id()));
        let path = dir.join("r.json");
        let e = write_atomic(&path, b"{}").expect_err("no directory");
        let msg = e.to_string();
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        assert!(msg.contains("does the directory"), "{msg}");
        assert!(!dir.exists());
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("leakscope-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("r.json");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("overwrite");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["r.json"], "no temporary file left");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
