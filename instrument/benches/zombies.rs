//! What the zombie watcher costs: CPU time of its thread per second of wall time, with N open
//! tracked TCP connections (default 10,000). The clients live in a child process (this binary
//! with `--clients`), so each process stays under the default limit of open files.
//!
//! Run with: `cargo bench -p leakscope --features enabled --bench zombies`
//! Options: `-- --connections N` (default 10000), `--seconds S` (default 10).
//! Linux only (the watcher reads /proc).

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--clients") {
        return clients(&args[1..]);
    }
    let mut n = 10_000usize;
    let mut seconds = 10u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--connections", Some(v)) => n = v as usize,
            ("--seconds", Some(v)) => seconds = v,
            _ => {
                eprintln!("usage: zombies [--connections N] [--seconds S]");
                std::process::exit(2)
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--clients", &addr.to_string(), &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("client process");
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let (s, peer) = listener.accept().await.unwrap();
            held.push(leakscope::io::track(s, "bench", Some(peer.to_string())));
        }
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "connected", "the client process");
        // Let the watcher start and settle, then measure.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu0, t0) = (watcher_cpu_ms(), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (cpu1, wall) = (watcher_cpu_ms(), t0.elapsed());
        let open = leakscope::summary(0).totals.open_connections;
        let per_s = (cpu1 - cpu0) as f64 / wall.as_secs_f64();
        println!("| open tracked connections | watcher CPU per second | share of one core |");
        println!("|---|---|---|");
        println!("| {open} | {per_s:.1} ms | {:.2}% |", per_s / 10.0);
        let _ = child.stdin.take().unwrap().write_all(b"done\n");
        let _ = child.wait();
        drop(held);
    });
}

/// CPU time (user + system, ms) of the watcher thread so far.
fn watcher_cpu_ms() -> u64 {
    let tick_ms = 10; // USER_HZ is 100 on Linux
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with("leakscope-zomb") {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            return ticks * tick_ms;
        }
    }
    panic!("no leakscope-zombies thread: is this Linux with /proc?");
}

/// The child: opens `n` connections to `addr`, says "connected", holds them until stdin says
/// anything.
fn clients(args: &[String]) {
    let addr: std::net::SocketAddr = args[0].parse().unwrap();
    let n: usize = args[1].parse().unwrap();
    let conns: Vec<std::net::TcpStream> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    println!("connected");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(conns);
}
