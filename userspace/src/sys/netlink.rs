//! XDP on an interface through rtnetlink (`RTM_SETLINK` with a nested `IFLA_XDP`), the
//! way every kernel since 4.8 takes it; used where aya's XDP path cannot run (below 4.17).
//!
//! The message is built by [`setlink_xdp_message`] (pure, unit tested) and sent by
//! [`set_xdp`], which waits for the kernel's acknowledgement.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{last_error, SyscallError};

const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;

/// `XDP_FLAGS_*`: which XDP mode to ask for.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;

/// Appends one netlink attribute (`nlattr` header, payload, padding to 4 bytes).
fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The `RTM_SETLINK` request that sets (or, with `prog_fd` -1, removes) the XDP program of
/// interface `ifindex`: `nlmsghdr`, `ifinfomsg`, `IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS }`.
pub fn setlink_xdp_message(ifindex: u32, prog_fd: i32, flags: u32, seq: u32) -> Vec<u8> {
    let mut nested = Vec::new();
    push_attr(&mut nested, IFLA_XDP_FD, &prog_fd.to_ne_bytes());
    push_attr(&mut nested, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    let mut body = Vec::new();
    // ifinfomsg: family (AF_UNSPEC), pad, type, index, flags, change.
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    push_attr(&mut body, IFLA_XDP | NLA_F_NESTED, &nested);
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&RTM_SETLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend(body);
    msg
}

/// The errno of the `NLMSG_ERROR` acknowledgement in `reply` for request `seq`: Some(0)
/// for success, None if `reply` holds no acknowledgement of it.
pub fn parse_ack(reply: &[u8], seq: u32) -> Option<i32> {
    let mut at = 0usize;
    while let Some(hdr) = reply.get(at..at + 16) {
        let len = u32::from_ne_bytes(hdr[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(hdr[4..6].try_into().ok()?);
        let msg_seq = u32::from_ne_bytes(hdr[8..12].try_into().ok()?);
        if len < 16 {
            return None;
        }
        if kind == NLMSG_ERROR && msg_seq == seq {
            let err = i32::from_ne_bytes(reply.get(at + 16..at + 20)?.try_into().ok()?);
            // The kernel sends -errno; i32::MIN is no errno (found by fuzz/, target elf).
            return Some(err.checked_neg().unwrap_or(libc::EPROTO));
        }
        at += len.next_multiple_of(4);
    }
    None
}

/// Sets (`prog_fd` >= 0) or removes (-1) the XDP program of `ifindex` in mode `flags`.
pub fn set_xdp(ifindex: u32, prog_fd: RawFd, flags: u32) -> Result<(), SyscallError> {
    // SAFETY: plain socket(2); the fd is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(last_error("socket(AF_NETLINK)"));
    }
    // SAFETY: `fd` was just returned by socket(2) and is not owned elsewhere.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let seq = 1;
    let msg = setlink_xdp_message(ifindex, prog_fd, flags, seq);
    // SAFETY: `msg` is a valid buffer of its length; the kernel picks the destination.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(last_error("send(RTM_SETLINK)"));
    }
    let mut reply = vec![0u8; 4096];
    loop {
        // SAFETY: `reply` is writable for its whole length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
        if n < 0 {
            return Err(last_error("recv(RTM_SETLINK ack)"));
        }
        match parse_ack(&reply[..n as usize], seq) {
            Some(0) => return Ok(()),
            Some(errno) => {
                return Err(SyscallError {
                    call: "RTM_SETLINK IFLA_XDP",
                    source: io::Error::from_raw_os_error(errno),
                })
            }
            None if n == 0 => {
                return Err(SyscallError {
                    call: "RTM_SETLINK IFLA_XDP",
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                })
            }
            None => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setlink_message_layout() {
        let m = setlink_xdp_message(7, 42, XDP_FLAGS_SKB_MODE, 9);
        // 16 header + 16 ifinfomsg + 4 IFLA_XDP header + 2 x 8 attributes.
        assert_eq!(m.len(), 52);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 52);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), RTM_SETLINK);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 9);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes(m[32..34].try_into().unwrap()), 20);
        assert_eq!(
            u16::from_ne_bytes(m[34..36].try_into().unwrap()),
            IFLA_XDP | NLA_F_NESTED
        );
        assert_eq!(
            u16::from_ne_bytes(m[38..40].try_into().unwrap()),
            IFLA_XDP_FD
        );
        assert_eq!(i32::from_ne_bytes(m[40..44].try_into().unwrap()), 42);
        assert_eq!(
            u16::from_ne_bytes(m[46..48].try_into().unwrap()),
            IFLA_XDP_FLAGS
        );
        assert_eq!(
            u32::from_ne_bytes(m[48..52].try_into().unwrap()),
            XDP_FLAGS_SKB_MODE
        );
    }

    #[test]
    fn acks_and_errors() {
        let ack = |seq: u32, errno: i32| {
            let mut r = Vec::new();
            r.extend_from_slice(&36u32.to_ne_bytes());
            r.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            r.extend_from_slice(&0u16.to_ne_bytes());
            r.extend_from_slice(&seq.to_ne_bytes());
            r.extend_from_slice(&0u32.to_ne_bytes());
            r.extend_from_slice(&errno.wrapping_neg().to_ne_bytes());
            r.extend_from_slice(&[0; 16]);
            r
        };
        assert_eq!(parse_ack(&ack(1, 0), 1), Some(0));
        assert_eq!(parse_ack(&ack(1, libc::EBUSY), 1), Some(libc::EBUSY));
        assert_eq!(parse_ack(&ack(2, 0), 1), None);
        assert_eq!(parse_ack(&[0; 8], 1), None);
        let mut two = ack(5, 0);
        two.extend(ack(1, libc::EOPNOTSUPP));
        assert_eq!(parse_ack(&two, 1), Some(libc::EOPNOTSUPP));
        // fuzz/'s crash: an error code of i32::MIN overflowed the negation.
        assert_eq!(parse_ack(&ack(1, i32::MIN), 1), Some(libc::EPROTO));
    }
}
