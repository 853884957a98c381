//! Listening sockets and process limits shared by every model.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// Bind and listen through socket2, with our own backlog.
///
/// `std::net::TcpListener::bind` and mio both listen with a backlog of 128.
/// When thousands of connects arrive in a burst, the kernel drops the SYNs
/// past the backlog and each dropped client retries a second later, which
/// shows up as a 1 s step in connect latency that no server model deserves.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Raise RLIMIT_NOFILE's soft limit to its hard limit, and return it.
/// 5000 connections need 5000 descriptors; the usual soft default is 1024.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every target
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur as u64)
}

/// True for the accept errors that mean "out of descriptors or memory right
/// now": the server should back off and try again, not exit or spin.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// True for accept errors that concern only the one connection being
/// accepted (it was reset before we got to it); the next accept may work.
pub fn is_per_connection(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
        || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}
