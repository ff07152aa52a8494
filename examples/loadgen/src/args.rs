//! A tiny `--flag value` parser with clear errors (no dependency).

use std::collections::HashMap;

/// Parsed `--name value` pairs and bare `--switch`es.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// Parses `argv` (without the program name). `switches` take no value.
    pub fn parse(
        argv: impl IntoIterator<Item = String>,
        switches: &[&str],
    ) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = argv.into_iter().filter(|a| a != "--bench");
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument {a:?} (flags look like --name value)"
                ));
            };
            if switches.contains(&name) {
                out.switches.push(name.to_owned());
                continue;
            }
            let v = it.next().ok_or(format!("--{name} needs a value"))?;
            out.values.insert(name.to_owned(), v);
        }
        Ok(out)
    }

    /// Whether `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// The value of `--name`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(
        &mut self,
        name: &str,
        default: T,
        what: &str,
    ) -> Result<T, String> {
        match self.values.remove(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} {v:?}: expected {what}")),
        }
    }

    /// The value of `--name` as a string, if given.
    pub fn string(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// `--server-pid PID`, if given.
    pub fn pid(&mut self) -> Result<Option<u32>, String> {
        self.string("server-pid")
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("--server-pid {p:?}: expected a process id"))
            })
            .transpose()
    }

    /// Fails on flags nobody asked for.
    pub fn finish(self) -> Result<(), String> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown flag --{k}")),
        }
    }
}
