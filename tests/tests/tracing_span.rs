//! Each connection is a tracing span carrying `conn.id`, the peer and the label, so log lines
//! from handler code carry the connection. (Own binary: it installs a global subscriber.)

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_lines_from_handler_code_carry_the_connection() {
    let out = Captured::default();
    let writer = out.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    leakscope_tests::run(async {
        let conn = leakscope::Connection::open("/ws/traced", Some("127.0.0.1:4242".into()));
        let id = conn.id().unwrap();
        conn.scope(async { tracing::info!("hello from the handler") })
            .await;
        conn.close();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("hello from the handler"))
            .unwrap_or_else(|| panic!("no log line in {text:?}"));
        assert!(line.contains(&format!("conn.id={id}")), "{line}");
        assert!(line.contains("127.0.0.1:4242"), "{line}");
        assert!(line.contains("/ws/traced"), "{line}");
    });
}
