//! Debian packages through apt, never installed: resolve the newest kernel package name,
//! `apt-get download` it, and unpack single members with `dpkg-deb`.
//!
//! The host's own apt configuration serves the host's release (bookworm). Other releases
//! (bullseye) go through a private configuration under the cache directory: its own
//! sources.list (built from the host's mirror), lists, archives and an empty `apt.conf.d`,
//! so /etc/apt and /var/lib/apt/lists are never touched and host hooks (such as
//! docker-clean, which deletes .debs under other users' feet) do not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AptError {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed ({status}):\n{stderr}")]
    Failed {
        cmd: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*")]
    NoMirror,
    #[error("`apt-get download {pkg}` succeeded but no {pkg}_*.deb appeared in {dir}")]
    NoDeb { pkg: String, dir: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AptError + '_ {
    move |source| AptError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The host's Debian mirrors, as configured in its apt sources.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    /// Serves `<release>` and `<release>-updates`.
    pub main: Option<String>,
    /// Serves `<release>-security`.
    pub security: Option<String>,
}

impl Mirrors {
    /// Reads the host's sources (deb822 `*.sources` and one-line `*.list` forms).
    pub fn from_host() -> Result<Self, AptError> {
        let mut texts = Vec::new();
        if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
            texts.push(t);
        }
        if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let name = p.to_string_lossy();
                if name.ends_with(".sources") || name.ends_with(".list") {
                    if let Ok(t) = std::fs::read_to_string(&p) {
                        texts.push(t);
                    }
                }
            }
        }
        let mirrors = parse_mirrors(&texts);
        if mirrors.main.is_none() {
            return Err(AptError::NoMirror);
        }
        Ok(mirrors)
    }
}

/// Finds the first Debian archive and security URIs in apt source files of either form.
/// Only sources that serve a Debian-looking suite (`<name>`, `<name>-updates`,
/// `<name>-security`) with the `main` component count.
pub fn parse_mirrors(texts: &[String]) -> Mirrors {
    let mut m = Mirrors::default();
    let mut note = |uri: &str, suites: &[&str], components: &[&str]| {
        if !components.contains(&"main") || !uri.contains("debian") {
            return;
        }
        for suite in suites {
            let slot = if suite.ends_with("-security") {
                &mut m.security
            } else {
                &mut m.main
            };
            if slot.is_none() {
                *slot = Some(uri.trim_end_matches('/').to_owned());
            }
        }
    };
    for text in texts {
        if text.lines().any(|l| l.trim_start().starts_with("Types:")) {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .filter(|l| !l.trim_start().starts_with('#'))
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                        .map(str::trim)
                        .unwrap_or_default()
                };
                let types = field("Types");
                let enabled = field("Enabled");
                if !types.split_whitespace().any(|t| t == "deb") || enabled == "no" {
                    continue;
                }
                let suites: Vec<_> = field("Suites").split_whitespace().collect();
                let components: Vec<_> = field("Components").split_whitespace().collect();
                for uri in field("URIs").split_whitespace() {
                    note(uri, &suites, &components);
                }
            }
        } else {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default();
                let mut words = line.split_whitespace().peekable();
                if words.next() != Some("deb") {
                    continue;
                }
                if words.peek().is_some_and(|w| w.starts_with('[')) {
                    // Options: `[a=b c=d]`, possibly spread over several words.
                    for w in words.by_ref() {
                        if w.ends_with(']') {
                            break;
                        }
                    }
                }
                let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
                    continue;
                };
                let components: Vec<_> = words.collect();
                note(uri, &[suite], &components);
            }
        }
    }
    m
}

/// Ubuntu's archive on the same host as a Debian mirror: the last `debian` path component
/// becomes `ubuntu` (`http://deb.debian.org/debian` -> `http://deb.debian.org/ubuntu`).
pub fn ubuntu_archive(debian_mirror: &str) -> Option<String> {
    let base = debian_mirror.trim_end_matches('/');
    let (head, last) = base.rsplit_once('/')?;
    (last == "debian" && head.contains("://")).then(|| format!("{head}/ubuntu"))
}

/// One versioned package name, e.g. ABI 32 of `linux-image-5.10.0-32-cloud-amd64-unsigned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub abi: u32,
    pub name: String,
}

/// Picks the package names `<prefix><abi><suffix>` out of `apt-cache search --names-only`
/// output (`name - description` lines), newest ABI first, without duplicates.
pub fn parse_search(output: &str, prefix: &str, suffix: &str) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = output
        .lines()
        .filter_map(|line| {
            let name = line.split_whitespace().next()?;
            let abi = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            if abi.is_empty() || !abi.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Candidate {
                abi: abi.parse().ok()?,
                name: name.to_owned(),
            })
        })
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.abi));
    found.dedup();
    found
}

/// An apt configuration: the host's, or a private one under the cache directory.
#[derive(Debug, Clone)]
pub struct Apt {
    /// `APT_CONFIG` for a private configuration.
    config: Option<PathBuf>,
    lists: Option<PathBuf>,
    pub label: String,
}

impl Apt {
    pub fn host() -> Self {
        Self {
            config: None,
            lists: None,
            label: "host apt".to_owned(),
        }
    }

    /// A private configuration for Debian's `release` in `dir`, from the host's mirrors.
    pub fn private(dir: &Path, release: &str, mirrors: &Mirrors) -> Result<Self, AptError> {
        let main = mirrors.main.as_deref().ok_or(AptError::NoMirror)?;
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        let signed = if Path::new(keyring).exists() {
            format!(" [signed-by={keyring}]")
        } else {
            String::new()
        };
        let mut sources = format!("deb{signed} {main} {release} main\n");
        if let Some(sec) = &mirrors.security {
            sources.push_str(&format!("deb{signed} {sec} {release}-security main\n"));
        }
        Self::with_sources(dir, release, &sources)
    }

    /// A private configuration for Ubuntu's `suites` in `dir`: Ubuntu's archive on the
    /// host's Debian mirror ([`ubuntu_archive`]). Not signed by a key this machine has,
    /// hence `trusted=yes`; what is fetched is only unpacked, never installed.
    pub fn private_ubuntu(
        dir: &Path,
        suites: &[&str],
        mirrors: &Mirrors,
    ) -> Result<Self, AptError> {
        let main = mirrors.main.as_deref().ok_or(AptError::NoMirror)?;
        let archive = ubuntu_archive(main).ok_or(AptError::NoMirror)?;
        let sources: String = suites
            .iter()
            .map(|s| format!("deb [trusted=yes arch=amd64] {archive} {s} main\n"))
            .collect();
        Self::with_sources(dir, &suites.join("+"), &sources)
    }

    fn with_sources(dir: &Path, label: &str, sources: &str) -> Result<Self, AptError> {
        for sub in [
            "lists/partial",
            "archives/partial",
            "apt.conf.d",
            "preferences.d",
        ] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let release = label;
        let d = dir.display();
        let conf = format!(
            "Dir::Etc::sourcelist \"{d}/sources.list\";\n\
             Dir::Etc::sourceparts \"-\";\n\
             Dir::Etc::parts \"{d}/apt.conf.d\";\n\
             Dir::Etc::preferencesparts \"{d}/preferences.d\";\n\
             Dir::State::Lists \"{d}/lists\";\n\
             Dir::Cache::archives \"{d}/archives\";\n\
             Dir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n\
             Acquire::Languages \"none\";\n\
             APT::Sandbox::User \"root\";\n"
        );
        write_if_changed(&dir.join("sources.list"), sources)?;
        write_if_changed(&dir.join("apt.conf"), &conf)?;
        Ok(Self {
            config: Some(dir.join("apt.conf")),
            lists: Some(dir.join("lists")),
            label: format!("private apt ({release}, {})", dir.display()),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        if let Some(conf) = &self.config {
            cmd.env("APT_CONFIG", conf);
        }
        cmd.env("LC_ALL", "C").stdin(Stdio::null());
        cmd
    }

    /// Whether a private configuration has downloaded its package lists yet.
    pub fn has_lists(&self) -> bool {
        let Some(lists) = &self.lists else {
            return true;
        };
        std::fs::read_dir(lists).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
    }

    pub fn update(&self) -> Result<(), AptError> {
        let mut cmd = self.command("apt-get");
        cmd.args(["-q", "update"]);
        run(cmd, None).map(drop)
    }

    /// `apt-cache search` for `<prefix><digits><suffix>`, newest first.
    pub fn search(&self, prefix: &str, suffix: &str) -> Result<Vec<Candidate>, AptError> {
        let regex = format!("^{}[0-9]+{}$", regex_escape(prefix), regex_escape(suffix));
        let mut cmd = self.command("apt-cache");
        cmd.args(["search", "--names-only", &regex]);
        let out = run(cmd, None)?;
        Ok(parse_search(&out, prefix, suffix))
    }

    /// Downloads `pkg` into `dest` (through a scratch directory, so a failed download leaves
    /// no partial file) and returns the .deb's path.
    pub fn download(&self, pkg: &str, dest: &Path) -> Result<PathBuf, AptError> {
        let scratch = dest.join(format!(".download-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(io_err(&scratch))?;
        let result = (|| {
            let mut cmd = self.command("apt-get");
            cmd.args(["-q", "download", pkg]);
            if self.config.is_none() {
                cmd.args(["-o", "APT::Sandbox::User=root"]);
            }
            run(cmd, Some(&scratch))?;
            let deb = find_deb(&scratch, pkg).ok_or_else(|| AptError::NoDeb {
                pkg: pkg.to_owned(),
                dir: scratch.clone(),
            })?;
            let target = dest.join(deb.file_name().unwrap_or_default());
            std::fs::rename(&deb, &target).map_err(io_err(&target))?;
            Ok(target)
        })();
        // Best effort: the directory is ours and holds nothing of value after a rename.
        if let Err(e) = std::fs::remove_dir_all(&scratch) {
            eprintln!(
                "vm-tests: warning: cannot remove {}: {e}",
                scratch.display()
            );
        }
        result
    }
}

/// The `<pkg>_*.deb` in `dir`, if any.
pub fn find_deb(dir: &Path, pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    let mut debs: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    debs.sort();
    debs.pop()
}

/// Unpacks the members of `deb` matching the tar wildcard `pattern` (e.g.
/// `./boot/vmlinuz-*`) into `dest`: `dpkg-deb --fsys-tarfile DEB | tar -x`.
pub fn unpack(deb: &Path, pattern: &str, dest: &Path) -> Result<(), AptError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let dpkg_desc = format!("dpkg-deb --fsys-tarfile {}", deb.display());
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| AptError::Spawn {
            cmd: dpkg_desc.clone(),
            source,
        })?;
    let tar_in = dpkg.stdout.take().map(Stdio::from).unwrap_or(Stdio::null());
    let mut tar = Command::new("tar");
    tar.arg("-x")
        .arg("-C")
        .arg(dest)
        .args(["--wildcards", pattern])
        .stdin(tar_in);
    let tar_result = run(tar, None);
    let dpkg_out = dpkg.wait_with_output().map_err(|source| AptError::Spawn {
        cmd: dpkg_desc.clone(),
        source,
    })?;
    if !dpkg_out.status.success() {
        return Err(AptError::Failed {
            cmd: dpkg_desc,
            status: dpkg_out.status,
            stderr: String::from_utf8_lossy(&dpkg_out.stderr).into_owned(),
        });
    }
    tar_result.map(drop)
}

/// Runs `cmd` (in `dir` if given) and returns its stdout; stderr goes into the error.
fn run(mut cmd: Command, dir: Option<&Path>) -> Result<String, AptError> {
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let desc = describe(&cmd);
    let out = cmd.output().map_err(|source| AptError::Spawn {
        cmd: desc.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(AptError::Failed {
            cmd: desc,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if k == "APT_CONFIG" {
            if let Some(v) = v {
                s.push_str(&format!("APT_CONFIG={} ", v.to_string_lossy()));
            }
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if ".+*?()[]{}|^$\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), AptError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH_61: &str = "\
linux-image-6.1.0-47-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-56-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-9-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-56-cloud-amd64-dbg - Debug symbols for linux-image-6.1.0-56-cloud-amd64
linux-image-6.1.0-56-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-rt-cloud-amd64-unsigned - not a number
linux-image-6.1.0-50-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
";

    #[test]
    fn search_output_newest_first_numeric_order() {
        let c = parse_search(SEARCH_61, "linux-image-6.1.0-", "-cloud-amd64-unsigned");
        let abis: Vec<_> = c.iter().map(|c| c.abi).collect();
        assert_eq!(abis, [56, 50, 47, 9]);
        assert_eq!(c[0].name, "linux-image-6.1.0-56-cloud-amd64-unsigned");
    }

    #[test]
    fn search_output_other_series_and_empty() {
        let out = "linux-image-5.10.0-32-cloud-amd64-unsigned - Linux 5.10\n\
                   linux-image-5.10.0-35-cloud-amd64-unsigned - Linux 5.10\n";
        let c = parse_search(out, "linux-image-5.10.0-", "-cloud-amd64-unsigned");
        assert_eq!(c.iter().map(|c| c.abi).collect::<Vec<_>>(), [35, 32]);
        assert!(parse_search(SEARCH_61, "linux-image-5.10.0-", "-cloud-amd64-unsigned").is_empty());
        assert!(parse_search("", "a-", "-b").is_empty());
    }

    #[test]
    fn mirrors_from_deb822() {
        let t = "Types: deb\n\
                 # http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                 URIs: http://deb.debian.org/debian\n\
                 Suites: bookworm bookworm-updates\n\
                 Components: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
                 \n\
                 Types: deb\n\
                 URIs: http://deb.debian.org/debian-security\n\
                 Suites: bookworm-security\n\
                 Components: main\n";
        let other = "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n";
        let m = parse_mirrors(&[other.to_owned(), t.to_owned()]);
        assert_eq!(m.main.as_deref(), Some("http://deb.debian.org/debian"));
        assert_eq!(
            m.security.as_deref(),
            Some("http://deb.debian.org/debian-security")
        );
    }

    #[test]
    fn mirrors_from_one_line_sources() {
        let t = "# comment\n\
                 deb-src http://src.example/debian bookworm main\n\
                 deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n\
                 deb http://security.example/debian-security bookworm-security main\n";
        let m = parse_mirrors(&[t.to_owned()]);
        assert_eq!(m.main.as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(
            m.security.as_deref(),
            Some("http://security.example/debian-security")
        );
        assert_eq!(parse_mirrors(&["".to_owned()]), Mirrors::default());
    }

    #[test]
    fn private_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mirrors {
            main: Some("http://m/debian".into()),
            security: Some("http://m/debian-security".into()),
        };
        let apt = Apt::private(dir.path(), "bullseye", &m).unwrap();
        assert!(!apt.has_lists());
        let sources = std::fs::read_to_string(dir.path().join("sources.list")).unwrap();
        assert!(
            sources.contains("http://m/debian bullseye main"),
            "{sources}"
        );
        assert!(sources.contains("http://m/debian-security bullseye-security main"));
        let conf = std::fs::read_to_string(dir.path().join("apt.conf")).unwrap();
        assert!(conf.contains("Dir::State::Lists"), "{conf}");
        assert!(conf.contains("apt.conf.d"), "{conf}");
    }

    #[test]
    fn ubuntu_archive_beside_the_debian_mirror() {
        assert_eq!(
            ubuntu_archive("http://deb.debian.org/debian/").as_deref(),
            Some("http://deb.debian.org/ubuntu")
        );
        assert_eq!(
            ubuntu_archive("http://m.example/mirror/debian").as_deref(),
            Some("http://m.example/mirror/ubuntu")
        );
        assert_eq!(ubuntu_archive("http://m.example/debian-security"), None);
        let dir = tempfile::tempdir().unwrap();
        let m = Mirrors {
            main: Some("http://m/debian".into()),
            security: None,
        };
        Apt::private_ubuntu(dir.path(), &["bionic", "bionic-updates"], &m).unwrap();
        let sources = std::fs::read_to_string(dir.path().join("sources.list")).unwrap();
        assert_eq!(
            sources,
            "deb [trusted=yes arch=amd64] http://m/ubuntu bionic main\n\
             deb [trusted=yes arch=amd64] http://m/ubuntu bionic-updates main\n"
        );
    }

    #[test]
    fn regex_is_escaped() {
        assert_eq!(regex_escape("linux-image-6.1.0-"), "linux-image-6\\.1\\.0-");
    }
}
