//! Rendering check results: a human table or JSON lines (`check`, `error` and `summary`
//! messages of [`crate::message`], the loader's own shape), into any `Write`.

use std::io::{self, Write};

use crate::message::Message;

use super::{ProgramAnalysis, Version};

/// Writes `m` as a JSON line, in the loader's one shape.
fn json_line(out: &mut impl Write, m: &Message<'_>) -> io::Result<()> {
    let mut buf = Vec::new();
    crate::sink::json::render(&mut buf, m);
    buf.push(b'\n');
    out.write_all(&buf)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text.
    Human,
    /// One JSON object per line.
    Json,
}

/// Totals for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects read.
    pub objects: usize,
    /// Programs checked.
    pub programs: usize,
    /// Programs the kernel can run.
    pub ok: usize,
    /// Programs it cannot.
    pub incompatible: usize,
    /// Objects that could not be read or parsed.
    pub errors: usize,
}

/// Writes check results in one format.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    kernel: Version,
}

impl<W: Write> Printer<W> {
    /// A printer checking against `kernel`.
    pub fn new(out: W, format: Format, kernel: Version) -> Self {
        Printer {
            out,
            format,
            kernel,
        }
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// One program's verdict.
    pub fn program(&mut self, object: &str, a: &ProgramAnalysis) -> io::Result<()> {
        let problems = a.problems(self.kernel);
        let min = a.min_kernel().map(|n| n.to_string());
        match self.format {
            Format::Json => json_line(
                &mut self.out,
                &Message::Check {
                    object,
                    analysis: a,
                    kernel: self.kernel,
                },
            ),
            Format::Human => {
                let head = format!("{object} {} ({}), {} insns", a.program, a.section, a.insns);
                let min = min.unwrap_or_else(|| "any".into());
                if problems.is_empty() {
                    return writeln!(
                        self.out,
                        "ok    {head}: runs on {} (needs {min})",
                        self.kernel
                    );
                }
                writeln!(
                    self.out,
                    "FAIL  {head}: cannot run on {} (needs {min}):",
                    self.kernel
                )?;
                for p in problems {
                    writeln!(
                        self.out,
                        "        {:<13} {:<52} needs {}",
                        p.kind.as_str(),
                        p.what,
                        p.needs
                    )?;
                }
                Ok(())
            }
        }
    }

    /// An object that could not be checked (JSON only: the human message goes to stderr).
    pub fn error(&mut self, object: &str, text: &str) -> io::Result<()> {
        match self.format {
            Format::Json => json_line(
                &mut self.out,
                &Message::Error {
                    object,
                    program: None,
                    section: None,
                    error: text,
                    verifier_log: None,
                },
            ),
            Format::Human => Ok(()),
        }
    }

    /// The final line.
    pub fn summary(&mut self, s: &Summary) -> io::Result<()> {
        match self.format {
            Format::Json => {
                json_line(
                    &mut self.out,
                    &Message::CheckSummary {
                        kernel: self.kernel,
                        summary: s,
                    },
                )?;
                self.out.flush()
            }
            Format::Human => {
                let errors = match s.errors {
                    0 => String::new(),
                    n => format!(", {}", plural(n, "unreadable object")),
                };
                writeln!(
                    self.out,
                    "Linux {}: {} in {}: {} ok, {} incompatible{errors}",
                    self.kernel,
                    plural(s.programs, "program"),
                    plural(s.objects, "object"),
                    s.ok,
                    s.incompatible
                )?;
                self.out.flush()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Needs, Requirement};
    use super::*;

    fn analysis() -> ProgramAnalysis {
        ProgramAnalysis {
            program: "prog".into(),
            section: "kprobe/x".into(),
            insns: 12,
            requirements: vec![
                Requirement {
                    kind: Kind::Helper,
                    what: "bpf_probe_read_kernel (113)".into(),
                    needs: Needs::Since(Version::new(5, 5)),
                },
                Requirement {
                    kind: Kind::ProgramType,
                    what: "kprobe".into(),
                    needs: Needs::Since(Version::new(4, 1)),
                },
            ],
        }
    }

    #[test]
    fn json_lines() {
        let mut p = Printer::new(Vec::new(), Format::Json, Version::new(4, 14));
        p.program("a.elf", &analysis()).unwrap();
        p.error("b.elf", "not an ELF").unwrap();
        p.summary(&Summary {
            objects: 2,
            programs: 1,
            incompatible: 1,
            errors: 1,
            ..Summary::default()
        })
        .unwrap();
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        // The loader's shape: flat, no `data` wrapper.
        let d = &lines[0];
        assert_eq!(lines[0]["type"], "check");
        assert_eq!(d["object"], "a.elf");
        assert_eq!(d["kernel"], "4.14");
        assert_eq!(d["ok"], false);
        assert_eq!(d["min_kernel"], "5.5");
        assert_eq!(
            d["problems"],
            serde_json::json!([{"kind": "helper", "what": "bpf_probe_read_kernel (113)", "needs": "5.5"}])
        );
        assert_eq!(lines[1]["type"], "error");
        assert_eq!(lines[1]["object"], "b.elf");
        assert_eq!(lines[1]["error"], "not an ELF");
        assert_eq!(lines[2]["type"], "summary");
        assert_eq!(lines[2]["incompatible"], 1);
        assert_eq!(lines[2]["kernel"], "4.14");
    }

    #[test]
    fn human_lines() {
        let mut p = Printer::new(Vec::new(), Format::Human, Version::new(5, 10));
        p.program("a.elf", &analysis()).unwrap();
        let mut q = Printer::new(Vec::new(), Format::Human, Version::new(4, 14));
        q.program("a.elf", &analysis()).unwrap();
        let ok = String::from_utf8(p.into_inner()).unwrap();
        let fail = String::from_utf8(q.into_inner()).unwrap();
        assert!(
            ok.starts_with("ok    a.elf prog (kprobe/x), 12 insns: runs on 5.10"),
            "{ok}"
        );
        assert!(fail.starts_with("FAIL  a.elf prog"), "{fail}");
        assert!(fail.contains("bpf_probe_read_kernel (113)"), "{fail}");
        assert!(fail.trim_end().ends_with("needs 5.5"), "{fail}");
    }
}
