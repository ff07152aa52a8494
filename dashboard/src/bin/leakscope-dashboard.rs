//! `leakscope-dashboard open REPORT.json [--addr 127.0.0.1:6680]`: a saved leakscope report
//! (the JSON of `/api/report`, or the file `LEAKSCOPE_REPORT` writes), served read-only on a
//! loopback address: `GET /` its HTML viewer, `GET /api/report` its JSON as saved. Usage errors
//! (unknown flags, a missing or unreadable file, not a report, a non-loopback address) exit
//! with status 2 and say why.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: leakscope-dashboard open REPORT.json [--addr ADDR]

Serves a saved leakscope report read-only: GET / renders it (the same HTML viewer as the
.html file written beside a report), GET /api/report returns its JSON as saved.

  REPORT.json   the JSON of /api/report, or the report file LEAKSCOPE_REPORT names
  --addr ADDR   where to listen, a loopback address (default 127.0.0.1:6680; port 0: any)
  -h, --help    this text

The report holds connection peers, routes and code locations: it is served to loopback
clients only. Stop it with Ctrl-C.";

/// What the command line asks for.
struct Open {
    file: PathBuf,
    addr: SocketAddr,
}

/// `Ok(None)`: help was asked for.
fn parse(args: &[String]) -> Result<Option<Open>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("open") => {}
        Some(other) => {
            return Err(format!(
                "unknown command {other:?}: the one command is `open REPORT.json`"
            ));
        }
        None => return Err("missing the command: `open REPORT.json`".to_owned()),
    }
    let mut file = None;
    let mut addr = leakscope_dashboard::DEFAULT_ADDR.to_owned();
    while let Some(a) = it.next() {
        if a == "--addr" {
            addr = it
                .next()
                .ok_or("--addr needs a value, e.g. 127.0.0.1:6680")?
                .clone();
        } else if let Some(v) = a.strip_prefix("--addr=") {
            addr = v.to_owned();
        } else if a.starts_with('-') && a != "-" {
            return Err(format!("unknown option {a:?}"));
        } else if file.is_some() {
            return Err(format!("one report at a time (also given {a:?})"));
        } else {
            file = Some(PathBuf::from(a));
        }
    }
    let file = file.ok_or("missing the report file: `open REPORT.json`")?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("--addr {addr:?} is not a socket address (e.g. 127.0.0.1:6680)"))?;
    // The standalone dashboard's rule: loopback only (a saved report has no token to check).
    if !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {addr}, which is not a loopback address: the report shows \
             connection peers, routes and code locations. Use 127.0.0.1 or [::1]"
        ));
    }
    Ok(Some(Open { file, addr }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let open = match parse(&args) {
        Ok(Some(open)) => open,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("leakscope-dashboard: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let shown = open.file.display();
    let json = match std::fs::read_to_string(&open.file) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("leakscope-dashboard: cannot read the report {shown}: {e}");
            return ExitCode::from(2);
        }
    };
    let app = match leakscope_dashboard::report_router(json) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("leakscope-dashboard: {shown}: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("leakscope-dashboard: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(open.addr)
            .await
            .map_err(|e| format!("cannot bind {}: {e}", open.addr))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("leakscope-dashboard: serving the report {shown} read-only on http://{addr}/");
        // With the peer's address: loopback clients only.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.map_err(|e| e.to_string())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leakscope-dashboard: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_command_line() {
        let o = parse(&args("open r.json --addr 127.0.0.1:0"))
            .expect("valid")
            .expect("not help");
        assert_eq!(o.file.to_str(), Some("r.json"));
        assert_eq!(o.addr.to_string(), "127.0.0.1:0");
        let o = parse(&args("open --addr=[::1]:7000 r.json"))
            .unwrap()
            .unwrap();
        assert_eq!(o.addr.to_string(), "[::1]:7000");
        assert_eq!(
            parse(&args("open r.json"))
                .unwrap()
                .unwrap()
                .addr
                .to_string(),
            "127.0.0.1:6680"
        );
        assert!(parse(&args("open x --help")).unwrap().is_none());
        for (bad, why) in [
            ("", "missing the command"),
            ("serve r.json", "unknown command"),
            ("open", "missing the report file"),
            ("open r.json --port 1", "unknown option"),
            ("open a.json b.json", "one report at a time"),
            ("open r.json --addr", "needs a value"),
            ("open r.json --addr localhost:1", "not a socket address"),
            ("open r.json --addr 0.0.0.0:6680", "not a loopback address"),
        ] {
            let e = parse(&args(bad))
                .err()
                .unwrap_or_else(|| panic!("{bad:?} is an error"));
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
