//! `--metrics`: a real Prometheus server (Debian's `prometheus`, installed by `make deps`)
//! scrapes the loader, and its HTTP API returns the exact map values the test's own
//! system calls made, labelled by the struct key's fields. Root only.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET http://127.0.0.1:port/path, the body.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn prometheus_scrapes_exact_map_values_labelled_by_the_key() {
    let Some(_g) = root_serial() else { return };
    let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("prometheus must be installed (Debian package prometheus; make deps installs it)");
    let obj = bpf_object("metrics", &["-I/usr/include/x86_64-linux-gnu"]);
    let (metrics_port, web_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{metrics_port}");
    let mut l = Loader::spawn(&["--json", "--metrics", &addr, obj.to_str().unwrap()]);
    l.wait_attached(2);
    let me = std::process::id();
    // Series are named after the object (the file's stem) and the map.
    let stem = obj.file_stem().unwrap().to_str().unwrap();
    let series = format!("bpf_{}_calls", loader::metrics::name_part(stem));
    for _ in 0..4 {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    for _ in 0..2 {
        // SAFETY: getpgid(0) asks about the caller.
        unsafe { libc::getpgid(0) };
    }
    // The loader's own page first.
    let page = get(metrics_port, "/metrics").expect("loader serves /metrics");
    let want = format!("{series}{{kind=\"1\",pid=\"{me}\"}} 4.0");
    assert!(page.lines().any(|l| l == want), "no `{want}` in:\n{page}");
    assert!(get(metrics_port, "/nope").unwrap().contains("/metrics"));

    // Its own directory per run: a TSDB left by an earlier run is not reused.
    let dir = tmp().join(format!("prometheus-{me}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: loader\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let _server = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<f64> {
        let body = get(web_port, &format!("/api/v1/query?query={}", encode(q)))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let ppid = format!("{series}{{pid=\"{me}\",kind=\"1\"}}");
    let start = Instant::now();
    while query(&ppid).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus never had {ppid}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(query(&ppid), Some(4.0));
    assert_eq!(
        query(&format!("{series}{{pid=\"{me}\",kind=\"2\"}}")),
        Some(2.0)
    );
    assert_eq!(query("loader_programs_attached"), Some(2.0));
    assert_eq!(query("up{job=\"loader\"}"), Some(1.0));
    let (status, _) = l.stop(libc::SIGINT);
    assert!(status.success());
    drop(_server);
    std::fs::remove_dir_all(&dir).ok();
}
