//! A writer for the `newc` ("new ASCII", magic `070701`) cpio format, the one the Linux
//! kernel unpacks as an initramfs.
//!
//! Each entry is a 110-byte ASCII header (the magic and 13 eight-digit hex fields), the
//! NUL-terminated name padded to a multiple of 4 bytes (counting the header), then the
//! data padded to a multiple of 4 bytes. The archive ends with an entry named
//! `TRAILER!!!`. Timestamps and owners are zero, so the same inputs give the same bytes.
//!
//! The archive is written uncompressed: the kernel accepts that, and under qemu TCG
//! decompressing a gzip'd initramfs costs more boot time than the few extra megabytes
//! cost to read.

use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Streams a newc archive into `W`.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    offset: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            next_ino: 1,
            offset: 0,
        }
    }

    /// A directory; parents must have been added before (the kernel does not create them).
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, &[])
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes())
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_entry(TRAILER, 0, 0, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name == TRAILER || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid cpio entry name {path:?}"),
            ));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.write_entry(name, ino, mode, nlink, data)
    }

    fn write_entry(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let filesize = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {} bytes is too large for newc", data.len()),
            )
        })?;
        let namesize = name.len() as u32 + 1;
        let fields = [
            ino, mode, 0, // uid
            0, // gid
            nlink, 0, // mtime
            filesize, 0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            namesize, 0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.offset % 4) as usize;
        if rem != 0 {
            self.put(&[0u8; 4][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed entry: (name, mode, nlink, data).
    type Entry = (String, u32, u32, Vec<u8>);

    /// A minimal newc reader, independent of the writer, to check what it wrote.
    fn parse(mut bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let total = bytes.len();
        loop {
            let at = total - bytes.len();
            assert_eq!(at % 4, 0, "entry at {at} not 4-aligned");
            assert_eq!(&bytes[..6], b"070701", "magic at {at}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, nlink, size, namesize) = (field(1), field(4), field(6), field(11));
            let name_end = 110 + namesize as usize;
            assert_eq!(bytes[name_end - 1], 0, "name NUL-terminated");
            let name = std::str::from_utf8(&bytes[110..name_end - 1])
                .unwrap()
                .to_owned();
            let data_start = name_end.next_multiple_of(4);
            let data_end = data_start + size as usize;
            let data = bytes[data_start..data_end].to_vec();
            bytes = &bytes[data_end.next_multiple_of(4)..];
            if name == TRAILER {
                assert!(bytes.is_empty(), "bytes after trailer");
                return entries;
            }
            entries.push((name, mode, nlink, data));
        }
    }

    #[test]
    fn round_trips_dirs_files_and_symlinks() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("/bin", 0o755).unwrap();
        w.file("/bin/busybox", 0o755, b"\x7fELF...").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "init", "empty"]);
        assert_eq!(entries[0].1, 0o040755);
        assert_eq!(entries[0].2, 2);
        assert_eq!(entries[1].1, 0o100755);
        assert_eq!(entries[1].3, b"\x7fELF...");
        assert_eq!(entries[2].1, 0o120777);
        assert_eq!(entries[2].3, b"busybox");
        assert_eq!(entries[3].3, b"#!/bin/sh\n");
        assert!(entries[4].3.is_empty());
    }

    #[test]
    fn header_layout_is_exact() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("ab", 0o644, b"xyz").unwrap();
        let bytes = w.finish().unwrap();
        let expected_header = "070701\
             00000001\
             000081A4\
             00000000\
             00000000\
             00000001\
             00000000\
             00000003\
             00000000\
             00000000\
             00000000\
             00000000\
             00000003\
             00000000";
        assert_eq!(&bytes[..110], expected_header.as_bytes());
        // 110 + "ab\0" = 113 -> padded to 116; data 3 bytes -> padded to 120.
        assert_eq!(&bytes[110..116], b"ab\0\0\0\0");
        assert_eq!(&bytes[116..120], b"xyz\0");
        assert_eq!(&bytes[120..126], b"070701");
        assert_eq!(&bytes[120 + 110..120 + 121], b"TRAILER!!!\0");
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("TRAILER!!!", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}
