//! `make test-vm`: boots Debian's 6.1 and 5.10 cloud kernels under qemu with a busybox
//! initramfs holding the static `loader`, the probe objects and a workload, and checks
//! the loader's JSON lines on the serial console.
//!
//! The data path, one module per stage:
//!
//! ```text
//! scenario (what to run, what to expect)
//!   -> assets (kernel .deb via apt, busybox)      apt (package names, download, unpack)
//!   -> initramfs (cpio: busybox, /init, plan)     cpio (newc writer), elf (static check)
//!   -> qemu (boot, serial console)                guest (the driver inside the VM)
//!   -> console (line protocol parser) -> check (verdicts) -> report (tables)
//! ```

pub mod apt;
pub mod assets;
pub mod c_objects;
pub mod check;
pub mod console;
pub mod cpio;
pub mod elf;
pub mod guest;
pub mod host;
pub mod initramfs;
pub mod qemu;
pub mod report;
pub mod scenario;
