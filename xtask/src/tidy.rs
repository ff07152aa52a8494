//! `cargo xtask tidy`: the repository's own rules, checked on every CI run (in the spirit of
//! rust-analyzer's `xtask/src/tidy.rs`):
//!
//! - `allow(unsafe_code)` only in the allocator module (`instrument/src/heap/global.rs` and its
//!   tests);
//! - no source file over 400 lines;
//! - imports run one way: `heap` uses neither `tag`, `wrap` nor the collector; `tag` does not use
//!   `wrap` (tests excepted);
//! - every path ARCHITECTURE.md names exists;
//! - the close reasons the snapshot documents are exactly the ones the wrappers emit;
//! - the bit layouts the docs state match the code (a tag packs the generation at bit 32, the
//!   allocator's lane relies on slots below 2^24);
//! - every section `FixPattern::anchor` names exists in docs/fixes.md, and every code block of
//!   docs/fixes.md appears verbatim in tests/tests/fixes.rs (where it is tested).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::dirs;

const MAX_LINES: usize = 400;
/// (folder, paths its code must not use): the one-way import rule of ARCHITECTURE.md.
const LAYERS: [(&str, &[&str]); 2] = [
    (
        "instrument/src/heap/",
        &[
            "crate::tag",
            "crate::wrap",
            "crate::collector",
            "crate::verify",
        ],
    ),
    ("instrument/src/tag/", &["crate::wrap"]),
];
const UNSAFE_HOME: [&str; 3] = [
    "instrument/src/heap/global.rs",
    "instrument/src/heap/global/tests.rs",
    "instrument/src/heap/global/bench.rs",
];
/// Where ARCHITECTURE.md's short paths are looked up, in order.
const BASES: [&str; 5] = [
    "",
    "instrument/src",
    "instrument",
    "dashboard/src",
    "dashboard",
];

pub(crate) fn tidy() -> Result<(), String> {
    let (root, _) = dirs();
    let files = rust_files(&root)?;
    let mut problems = Vec::new();
    for f in &files {
        let text = read(&root.join(f))?;
        check_file(f, &text, &mut problems);
    }
    check_architecture(&root, &mut problems)?;
    check_close_reasons(&root, &files, &mut problems)?;
    check_bit_layouts(&root, &mut problems)?;
    check_fixes(&root, &mut problems)?;
    if problems.is_empty() {
        eprintln!("xtask tidy: {} Rust files, all rules hold", files.len());
        Ok(())
    } else {
        Err(format!("tidy:\n  - {}", problems.join("\n  - ")))
    }
}

/// The Rust files git knows (tracked or new and not ignored).
fn rust_files(root: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*.rs",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    let list = String::from_utf8_lossy(&out.stdout);
    Ok(list
        .lines()
        .filter(|f| root.join(f).exists())
        .map(str::to_owned)
        .collect())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn check_file(file: &str, text: &str, problems: &mut Vec<String>) {
    let lines = text.lines().count();
    if lines > MAX_LINES {
        problems.push(format!("{file}: {lines} lines (at most {MAX_LINES})"));
    }
    check_layers(file, text, problems);
    let allows_unsafe = text.contains("allow(unsafe_code)");
    if allows_unsafe && !UNSAFE_HOME.contains(&file) && !file.starts_with("xtask/") {
        problems.push(format!(
            "{file}: allow(unsafe_code) outside the allocator module ({})",
            UNSAFE_HOME[0]
        ));
    }
}

/// Code lines (not comments) of a non-test file must not use what its layer may not.
fn check_layers(file: &str, text: &str, problems: &mut Vec<String>) {
    if file.contains("/tests") || file.ends_with("tests.rs") {
        return;
    }
    for (folder, forbidden) in LAYERS {
        if !file.starts_with(folder) {
            continue;
        }
        let code = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"));
        for (n, line) in code {
            if let Some(f) = forbidden.iter().find(|f| line.contains(**f)) {
                problems.push(format!(
                    "{file}: uses {f} (line {}): imports run one way",
                    n + 1
                ));
            }
        }
    }
}

/// Backticked words in ARCHITECTURE.md that look like paths.
fn named_paths(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, part) in doc.split('`').enumerate() {
        let looks_like_path = !part.contains(' ')
            && (part.ends_with(".rs") || part.ends_with(".md") || part.ends_with('/'))
            && !part.contains('*');
        if i % 2 == 1 && looks_like_path {
            out.insert(part.to_owned());
        }
    }
    out
}

fn check_architecture(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let doc = read(&root.join("ARCHITECTURE.md"))?;
    for p in named_paths(&doc) {
        let found = BASES
            .iter()
            .map(|b| root.join(b).join(p.trim_end_matches('/')))
            .any(|c: PathBuf| c.exists());
        if !found {
            problems.push(format!("ARCHITECTURE.md names `{p}`, which does not exist"));
        }
    }
    Ok(())
}

/// The quoted words of the `close_reason` doc comment in snapshot.rs.
fn documented_reasons(snapshot: &str) -> BTreeSet<String> {
    let Some(start) = snapshot.find("/// What closed it") else {
        return BTreeSet::new();
    };
    let doc: String = snapshot[start..]
        .lines()
        .take_while(|l| l.trim_start().starts_with("///"))
        .collect::<Vec<_>>()
        .join(" ");
    quoted(&doc).collect()
}

fn quoted(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
}

/// The reasons the wrappers pass to `close_because(...)` (up to its closing parenthesis, which
/// may be lines later) or as `reason: "..."`.
fn emitted_reasons(root: &Path, files: &[String]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for f in files
        .iter()
        .filter(|f| f.starts_with("instrument/src/wrap/"))
    {
        let text = read(&root.join(f))?;
        for (at, _) in text.match_indices("close_because(") {
            let args = &text[at + "close_because(".len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    depth += i32::from(c == '(') - i32::from(c == ')');
                    depth == 0
                })
                .map_or(args.len(), |(i, _)| i);
            out.extend(quoted(&args[..end]));
        }
        for (at, _) in text.match_indices("reason: \"") {
            out.extend(quoted(&text[at..]).take(1));
        }
    }
    Ok(out)
}

fn check_close_reasons(
    root: &Path,
    files: &[String],
    problems: &mut Vec<String>,
) -> Result<(), String> {
    let documented = documented_reasons(&read(&root.join("instrument/src/snapshot.rs"))?);
    let emitted = emitted_reasons(root, files)?;
    for r in emitted.difference(&documented) {
        problems.push(format!("close reason {r:?} is emitted but not documented"));
    }
    for r in documented.difference(&emitted) {
        problems.push(format!(
            "close reason {r:?} is documented but never emitted"
        ));
    }
    Ok(())
}

fn check_bit_layouts(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let ids = read(&root.join("instrument/src/ids.rs"))?;
    if !(ids.contains("`generation << 32 | slot`") && ids.contains("as u64) << 32) | slot as u64"))
    {
        problems.push(
            "ids.rs: the tag's documented packing (generation << 32) and the code differ".into(),
        );
    }
    // The lane's closed value (`u64::MAX`) must be a header no block carries: slots stay
    // below 2^24, which the configuration clamps.
    let batch = read(&root.join("instrument/src/heap/batch.rs"))?;
    let config = read(&root.join("instrument/src/config.rs"))?;
    if !(batch.contains("const CLOSED: u64 = u64::MAX;")
        && batch.contains("slots stay below 2^24")
        && config.contains("v.min(1 << 24)")
        && config.contains("n.clamp(16, 1 << 24)"))
    {
        problems.push(
            "heap/batch.rs: the lane's CLOSED header relies on slots below 2^24 (config.rs clamps)"
                .into(),
        );
    }
    Ok(())
}

/// docs/fixes.md against the anchors leakscope links to and the tests that run its code.
fn check_fixes(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let doc = read(&root.join("docs/fixes.md"))?;
    let tests = read(&root.join("tests/tests/fixes.rs"))?;
    let code = read(&root.join("instrument/src/snapshot/fixes.rs"))?;
    let headings: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase().replace(' ', "-"))
        .collect();
    for anchor in code
        .lines()
        .filter(|l| l.contains("=> \"") && l.contains("FixPattern::"))
        .flat_map(|l| quoted(l).take(1).collect::<Vec<_>>())
    {
        if !headings.contains(&anchor) {
            problems.push(format!(
                "docs/fixes.md: no section for the anchor {anchor:?}"
            ));
        }
    }
    for block in doc.split("```rust\n").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        for item in block.split("\n\n").map(str::trim).filter(|i| !i.is_empty()) {
            if !tests.contains(item) {
                let first = item.lines().next().unwrap_or("");
                problems.push(format!(
                    "docs/fixes.md: code not in tests/tests/fixes.rs (so not tested): {first}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_reasons_are_read_from_the_docs() {
        let doc = "the `collector/` folder, `lib.rs`, not `a b.rs`, `*.rs` or `plain`";
        let p: Vec<_> = named_paths(doc).into_iter().collect();
        assert_eq!(p, ["collector/", "lib.rs"]);
        let snap =
            "    /// What closed it, one of: \"eof\",\n    /// \"read error\".\n    pub x: u8,";
        let r: Vec<_> = documented_reasons(snap).into_iter().collect();
        assert_eq!(r, ["eof", "read error"]);
    }
}
