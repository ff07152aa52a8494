//! What the fuzz tests send: paths, queries, header values, methods, peers, raw request
//! bytes. Weighted so that most cases get past the parser and the access rules to a handler.

use std::net::SocketAddr;

use axum::http::Method;
use proptest::prelude::*;

/// A path segment: ids (small ones name this process's connections and tasks, so their pages
/// render), names, percent-escapes (invalid UTF-8 too), dots, and huge runs.
pub(crate) fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (0u64..12).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("%FF%FE%00".to_owned()),
        1 => Just("%2F%2e%2e".to_owned()),
        1 => Just("app.js".to_owned()),
        1 => "[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,24}",
        1 => (1usize..20_000).prop_map(|n| "9".repeat(n)),
        1 => (1usize..20_000).prop_map(|n| "%41".repeat(n / 3 + 1)),
    ]
}

pub(crate) fn path() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "/",
        "//",
        "/api/",
        "/api/snapshot",
        "/api/history",
        "/api/report",
        "/api/report/save",
        "/api/pprof",
        "/api/events",
        "/metrics",
        "/health",
        "/task/",
        "/conn/",
    ]);
    prop_oneof![
        2 => fixed.prop_map(str::to_owned),
        1 => (
            prop::sample::select(vec!["conn", "task", "assets", "api", "nope"]),
            segment()
        )
            .prop_map(|(r, s)| format!("/{r}/{s}")),
        1 => (segment(), segment()).prop_map(|(a, b)| format!("/{a}/{b}/")),
        // This process's first connections and tasks: their pages render.
        1 => (prop::sample::select(vec!["conn", "task"]), 1u64..10)
            .prop_map(|(r, id)| format!("/{r}/{id}")),
    ]
}

/// A query value: words, escapes, unicode, huge.
pub(crate) fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("tok".to_owned()),
        prop::sample::select(vec![
            "open", "closed", "leaking", "all", "1", "0", "500", "/ws", "html"
        ])
        .prop_map(str::to_owned),
        "[a-z0-9]{1,8}",
        any::<u64>().prop_map(|n| n.to_string()),
        Just("%FF%00%0A".to_owned()),
        Just("%E2%9C%93+%3Cscript%3E".to_owned()),
        (1usize..12_000).prop_map(|n| "x".repeat(n)),
    ]
}

pub(crate) fn query() -> impl Strategy<Value = Option<String>> {
    let key = prop::sample::select(vec![
        "state", "label", "page", "per_page", "conn", "route", "dump", "format", "token", "x", "",
    ]);
    prop::option::of(
        prop::collection::vec((key, value()), 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    )
}

/// A header value: what browsers send, what they never send, and huge ones.
pub(crate) fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::sample::select(
            "localhost 127.0.0.1:1 [::1] evil.example http://evil.example null same-origin \
             cross-site none Bearer\ttok Bearer\t bearer\twrong [::1 a:b:c localhost:99999"
                .split(' ')
                .map(|v| v.replace('\t', " "))
                .collect::<Vec<_>>()
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(0x20u8..=0xff, 0..64),
        (1usize..60_000).prop_map(|n| vec![b'h'; n]),
    ]
}

pub(crate) fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop_oneof![
        8 => prop::sample::select(
            "host origin sec-fetch-site authorization content-type accept cookie range \
             if-none-match last-event-id"
                .split(' ')
                .collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!["x-forwarded-for", "forwarded"]),
    ];
    prop::collection::vec((name, header_value()), 0..4)
}

/// Mostly `GET`, so that most cases reach a handler.
pub(crate) fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        6 => Just(Method::GET),
        1 => prop::sample::select(vec![
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
        ]),
    ]
}

/// The peer the router is told about: mostly loopback (so that most cases reach a handler),
/// else mapped loopback, remote, mapped remote, or none.
pub(crate) fn peer() -> impl Strategy<Value = Option<SocketAddr>> {
    let other = prop::option::of(prop::sample::select(vec![
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
        "203.0.113.5:1",
        "[::ffff:203.0.113.5]:1",
        "[2001:db8::5]:1",
    ]));
    prop_oneof![4 => Just(Some("127.0.0.1:1")), 1 => other]
        .prop_map(|p| p.map(|p| p.parse().expect("an address")))
}

/// Raw request bytes: a request line of any method, target and version, then headers of any
/// bytes (control characters, huge values, many of them), then a body shorter or longer than
/// it says.
pub(crate) fn raw_request() -> impl Strategy<Value = Vec<u8>> {
    // Mostly well-formed request lines under the dashboard's prefix, so that most cases get
    // past hyper's parser to the router.
    let line = (
        prop_oneof![
            4 => Just("GET"),
            1 => prop::sample::select(vec!["POST", "HEAD", "G\x01T", "", "CONNECT", "BREW"]),
        ],
        prop_oneof![
            4 => (path(), query()).prop_map(|(p, q)| {
                let q = q.map(|q| format!("?{q}")).unwrap_or_default();
                format!("/_leakscope{p}{q}").into_bytes()
            }),
            1 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::sample::select(vec![
                "*",
                "http://evil.example/_leakscope/health",
                "http://localhost/_leakscope/health",
                "localhost:80",
            ])
            .prop_map(|t| t.as_bytes().to_vec()),
        ],
        prop_oneof![
            4 => Just("HTTP/1.1"),
            1 => prop::sample::select(vec!["HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", ""]),
        ],
    );
    let header = prop_oneof![
        4 => Just(b"Host: localhost".to_vec()),
        2 => (
            prop::sample::select(vec!["Host", "Origin", "Content-Length", "Transfer-Encoding"]),
            header_value()
        )
            .prop_map(|(n, v)| [n.as_bytes(), b": ", &v].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..80),
        1 => (1usize..200_000).prop_map(|n| [b"X-Big: ".as_slice(), &vec![b'x'; n]].concat()),
    ];
    (
        line,
        prop::collection::vec(header, 0..4),
        prop_oneof![4 => Just(0usize), 1 => 0usize..300],
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|((m, target, version), headers, many, body)| {
            let mut out = [
                m.as_bytes(),
                b" ",
                &target,
                b" ",
                version.as_bytes(),
                b"\r\n",
            ]
            .concat();
            // So that the server closes once it answered (the reader waits for the end).
            out.extend_from_slice(b"Connection: close\r\n");
            for h in headers {
                out.extend_from_slice(&h);
                out.extend_from_slice(b"\r\n");
            }
            for i in 0..many {
                out.extend_from_slice(format!("X-Many-{i}: y\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        })
}
