//! The closing tables: one line per kernel, one per scenario on each kernel.

use std::fmt::Write;
use std::time::Duration;

use crate::check::Outcome;

#[derive(Debug, Clone)]
pub struct KernelReport {
    pub series: String,
    pub package: String,
    /// Host wall clock from starting qemu to the result line.
    pub boot_to_result: Option<Duration>,
    /// The guest's /proc/uptime at the result line.
    pub guest_uptime: Option<Duration>,
    /// `VMTEST-INFO -` details (kernel release, kprobe PMU, execve symbol).
    pub info: String,
    pub outcomes: Vec<Outcome>,
    /// Everything that failed, guest-level and per scenario.
    pub problems: Vec<String>,
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1}s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".to_owned())
}

fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            // Writing to a String cannot fail.
            write!(line, "{cell:<w$}  ", w = widths[c]).ok();
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn table(reports: &[KernelReport]) -> String {
    let mut k = vec![[
        "kernel",
        "package",
        "result",
        "boot-to-result",
        "guest uptime",
        "attached",
        "events",
    ]
    .map(String::from)
    .to_vec()];
    let mut s = vec![
        ["kernel", "scenario", "result", "attached", "events", "time"]
            .map(String::from)
            .to_vec(),
    ];
    for r in reports {
        let verdict = |ok: bool| if ok { "ok" } else { "FAIL" }.to_owned();
        k.push(vec![
            r.series.clone(),
            r.package.clone(),
            verdict(r.problems.is_empty()),
            secs(r.boot_to_result),
            secs(r.guest_uptime),
            r.outcomes
                .iter()
                .map(|o| o.attached)
                .sum::<usize>()
                .to_string(),
            r.outcomes.iter().map(|o| o.events).sum::<u64>().to_string(),
        ]);
        for o in &r.outcomes {
            s.push(vec![
                r.series.clone(),
                o.scenario.to_owned(),
                verdict(o.ok()),
                o.attached.to_string(),
                o.events.to_string(),
                secs(o.elapsed.map(Duration::from_secs_f64)),
            ]);
        }
    }
    let mut out = String::from("\n");
    out.push_str(&render(&k));
    out.push('\n');
    out.push_str(&render(&s));
    for r in reports.iter().filter(|r| !r.info.is_empty()) {
        writeln!(out, "\n{}: {}", r.series, r.info).ok();
    }
    let failed: usize = reports
        .iter()
        .map(|r| r.outcomes.iter().filter(|o| !o.ok()).count())
        .sum();
    let total: usize = reports.iter().map(|r| r.outcomes.len()).sum();
    writeln!(
        out,
        "\nvm-tests: {} passed, {failed} failed",
        total - failed
    )
    .ok();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_up_and_counts() {
        let r = KernelReport {
            series: "5.10".to_owned(),
            package: "linux-image-5.10.0-32-cloud-amd64-unsigned".into(),
            boot_to_result: Some(Duration::from_millis(4321)),
            guest_uptime: None,
            info: "kprobe_pmu=6".into(),
            outcomes: vec![
                Outcome {
                    scenario: "kprobe-selftest",
                    attached: 1,
                    events: 6,
                    elapsed: Some(0.31),
                    failures: vec![],
                },
                Outcome {
                    scenario: "execsnoop",
                    attached: 0,
                    events: 0,
                    elapsed: None,
                    failures: vec!["x".into()],
                },
            ],
            problems: vec!["execsnoop: x".into()],
        };
        let t = table(&[r]);
        assert!(
            t.contains("5.10    linux-image-5.10.0-32-cloud-amd64-unsigned  FAIL    4.3s"),
            "{t}"
        );
        assert!(
            t.contains("5.10    kprobe-selftest  ok      1         6       0.3s"),
            "{t}"
        );
        assert!(
            t.contains("5.10    execsnoop        FAIL    0         0       -"),
            "{t}"
        );
        assert!(t.ends_with("vm-tests: 1 passed, 1 failed\n"), "{t}");
    }
}
