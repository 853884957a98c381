//! Where a sample's CPU went: the one table that maps a stack's frames
//! (kernel and user) to a category, and the rule that applies it.
//!
//! **The rule.** Walk the stack from the leaf (the frame the CPU was in)
//! towards the root, and take the first frame the table names. The leaf
//! itself is most often a helper that says nothing of the purpose (a
//! spinlock, `memcpy`, a timer interrupt's return), while the frames just
//! above it say what the work was for: a lock taken in `try_to_wake_up` is
//! a wake-up, a copy under `tcp_recvmsg` is the socket read. Walking
//! outwards from the leaf gives the innermost, most specific purpose; the
//! system-call entry frames sit near the root of every kernel stack, so
//! they win only where nothing inside them is named. A stack that ends in
//! user code with no named frame is the server's own code.

/// The categories, in the order tables and charts show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The process's own code (user space), libraries included.
    User,
    /// System-call entry and exit, and the calls' kernel work not named
    /// below (file-descriptor look-ups, `close`...).
    Syscall,
    /// Socket reads and writes, the copies between user and kernel included.
    Socket,
    /// The TCP/IP and loopback path: protocol work, the device, softirq.
    TcpIp,
    /// Waiting for readiness: epoll, poll, io_uring.
    Readiness,
    /// The scheduler and wake-ups: switching threads, waking them, futexes.
    Scheduler,
    /// Memory: page faults, allocation (kernel and user).
    Memory,
    /// Nothing in the table.
    Other,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::User,
        Category::Syscall,
        Category::Socket,
        Category::TcpIp,
        Category::Readiness,
        Category::Scheduler,
        Category::Memory,
        Category::Other,
    ];

    /// The name in the run JSON, the CSV and the charts.
    pub fn name(self) -> &'static str {
        match self {
            Category::User => "user",
            Category::Syscall => "syscall",
            Category::Socket => "socket",
            Category::TcpIp => "tcp_ip",
            Category::Readiness => "readiness",
            Category::Scheduler => "scheduler",
            Category::Memory => "memory",
            Category::Other => "other",
        }
    }
}

/// Which frames a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Space {
    Kernel,
    User,
}

/// One rule: frames of `space` whose symbol is `pattern` (a trailing `*`
/// matches any rest) belong to `category`. Within one frame the first rule
/// that matches wins, so exact names come before the prefixes they would
/// otherwise fall under (`tcp_sendmsg` is a socket write, `tcp_*` TCP/IP).
pub struct Rule {
    pub space: Space,
    pub pattern: &'static str,
    pub category: Category,
}

const fn k(pattern: &'static str, category: Category) -> Rule {
    Rule { space: Space::Kernel, pattern, category }
}
const fn u(pattern: &'static str, category: Category) -> Rule {
    Rule { space: Space::User, pattern, category }
}

use Category::*;

/// THE table. Symbol names are the kernel's (6.x) and glibc's/Rust's.
pub const RULES: &[Rule] = &[
    // Scheduler and wake-ups: a thread switched out and in, a thread woken.
    k("schedule*", Scheduler),
    k("__schedule", Scheduler),
    k("preempt_schedule*", Scheduler),
    k("finish_task_switch*", Scheduler),
    k("__switch_to*", Scheduler),
    k("switch_mm*", Scheduler),
    k("try_to_wake_up", Scheduler),
    k("ttwu_*", Scheduler),
    k("wake_up_*", Scheduler),
    k("__wake_up*", Scheduler),
    k("autoremove_wake_function", Scheduler),
    k("futex_*", Scheduler),
    k("__futex_*", Scheduler),
    k("do_futex", Scheduler),
    k("pick_next_task*", Scheduler),
    k("enqueue_task*", Scheduler),
    k("dequeue_task*", Scheduler),
    k("select_task_rq*", Scheduler),
    k("update_curr*", Scheduler),
    k("update_load_avg", Scheduler),
    k("psi_*", Scheduler),
    k("sched_*", Scheduler),
    k("resched_curr", Scheduler),
    k("check_preempt*", Scheduler),
    k("wakeup_preempt*", Scheduler),
    // Another CPU asking this one to reschedule (a woken thread to run).
    k("asm_sysvec_reschedule_ipi", Scheduler),
    k("sysvec_reschedule_ipi", Scheduler),
    u("__lll_lock_*", Scheduler),
    u("pthread_cond_*", Scheduler),
    u("futex_*", Scheduler),
    // Readiness: epoll, poll and select, io_uring.
    k("ep_*", Readiness),
    k("do_epoll_*", Readiness),
    k("__x64_sys_epoll*", Readiness),
    k("__arm64_sys_epoll*", Readiness),
    k("sock_poll", Readiness),
    k("tcp_poll", Readiness),
    k("do_sys_poll", Readiness),
    k("do_poll*", Readiness),
    k("do_select", Readiness),
    k("io_uring*", Readiness),
    k("__io_uring*", Readiness),
    k("__x64_sys_io_uring*", Readiness),
    k("io_submit_sqes", Readiness),
    k("io_issue_sqe", Readiness),
    k("io_poll_*", Readiness),
    k("io_cqring_*", Readiness),
    k("io_req_*", Readiness),
    k("io_recv*", Socket),
    k("io_send*", Socket),
    // Socket read and write, copies included (before TCP/IP's `tcp_*`).
    k("tcp_sendmsg*", Socket),
    k("tcp_recvmsg*", Socket),
    k("inet_sendmsg", Socket),
    k("inet_recvmsg", Socket),
    k("sock_*", Socket),
    k("__sock_*", Socket),
    k("____sys_recvmsg", Socket),
    k("____sys_sendmsg", Socket),
    k("__sys_sendto", Socket),
    k("__sys_recvfrom", Socket),
    k("ksys_read", Socket),
    k("ksys_write", Socket),
    k("vfs_read", Socket),
    k("vfs_write", Socket),
    k("skb_copy_datagram_iter", Socket),
    k("__skb_datagram_iter", Socket),
    k("simple_copy_to_iter", Socket),
    k("_copy_to_iter", Socket),
    k("_copy_from_iter*", Socket),
    k("copy_user*", Socket),
    k("rep_movs_alternative", Socket),
    k("skb_do_copy_data_nocache", Socket),
    k("sk_stream_*", Socket),
    k("sk_wait_data", Socket),
    k("lock_sock*", Socket),
    k("release_sock", Socket),
    k("__release_sock", Socket),
    // The TCP/IP and loopback path, softirq included.
    k("tcp_*", TcpIp),
    k("__tcp_*", TcpIp),
    k("ip_*", TcpIp),
    k("__ip_*", TcpIp),
    k("ipv4_*", TcpIp),
    k("ip6_*", TcpIp),
    k("inet_*", TcpIp),
    k("__inet_*", TcpIp),
    k("__dev_queue_xmit", TcpIp),
    k("dev_hard_start_xmit", TcpIp),
    k("loopback_xmit", TcpIp),
    k("net_rx_action", TcpIp),
    k("__napi_poll", TcpIp),
    k("process_backlog", TcpIp),
    k("__netif_*", TcpIp),
    k("netif_*", TcpIp),
    k("__do_softirq", TcpIp),
    k("do_softirq*", TcpIp),
    k("handle_softirqs", TcpIp),
    k("__local_bh_enable_ip", TcpIp),
    k("nf_*", TcpIp),
    k("skb_*", TcpIp),
    k("__skb_*", TcpIp),
    k("kfree_skb*", TcpIp),
    k("__kfree_skb", TcpIp),
    k("validate_xmit_skb*", TcpIp),
    k("sch_direct_xmit", TcpIp),
    k("__qdisc_run", TcpIp),
    k("dst_*", TcpIp),
    k("neigh_*", TcpIp),
    k("eth_type_trans", TcpIp),
    k("sk_reset_timer", TcpIp),
    k("sk_filter*", TcpIp),
    // Memory: page faults and allocation.
    k("asm_exc_page_fault", Memory),
    k("exc_page_fault", Memory),
    k("do_user_addr_fault", Memory),
    k("handle_mm_fault", Memory),
    k("__handle_mm_fault", Memory),
    k("do_anonymous_page", Memory),
    k("clear_page*", Memory),
    k("kmalloc*", Memory),
    k("__kmalloc*", Memory),
    k("kmem_cache_*", Memory),
    k("kfree", Memory),
    k("__slab_*", Memory),
    k("___slab_alloc", Memory),
    k("__alloc_pages*", Memory),
    k("alloc_pages*", Memory),
    k("get_page_from_freelist", Memory),
    k("free_unref_page*", Memory),
    k("page_frag_*", Memory),
    k("__page_frag_*", Memory),
    k("__mod_memcg*", Memory),
    k("mem_cgroup_*", Memory),
    k("__memcg_*", Memory),
    u("malloc", Memory),
    u("free", Memory),
    u("cfree*", Memory),
    u("realloc", Memory),
    u("calloc", Memory),
    u("_int_malloc", Memory),
    u("_int_free*", Memory),
    u("__libc_malloc", Memory),
    u("__libc_free", Memory),
    u("__rust_alloc*", Memory),
    u("__rust_dealloc", Memory),
    u("__rust_realloc", Memory),
    u("__rdl_*", Memory),
    // System-call entry and exit (near the root: the fallback for kernel
    // work under a system call that nothing above named).
    k("entry_SYSCALL_64*", Syscall),
    k("do_syscall_64", Syscall),
    k("x64_sys_call", Syscall),
    k("syscall_exit_to_user_mode*", Syscall),
    k("syscall_enter_from_user_mode*", Syscall),
    k("exit_to_user_mode*", Syscall),
    k("syscall_return_via_sysret", Syscall),
    k("entry_SYSRETQ*", Syscall),
    k("__x64_sys_*", Syscall),
    k("__se_sys_*", Syscall),
    k("__do_sys_*", Syscall),
    k("el0_svc*", Syscall),
    k("invoke_syscall", Syscall),
];

/// A frame's space and bare symbol: kernel frames end in `_[k]` (inferno's
/// `annotate_kernel`) and lose the compiler's clone suffixes
/// (`finish_task_switch.isra.0` is `finish_task_switch`); a `+0x..`
/// offset, where perf printed one, is dropped.
fn split(frame: &str) -> (Space, &str) {
    let name = frame.split("+0x").next().unwrap_or(frame);
    match name.strip_suffix("_[k]") {
        Some(n) => (Space::Kernel, n.split('.').next().unwrap_or(n)),
        None => (Space::User, name),
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// The category of one frame, by the first rule of the table that matches it.
fn of_frame(frame: &str) -> Option<Category> {
    let (space, name) = split(frame);
    RULES.iter().find(|r| r.space == space && matches(r.pattern, name)).map(|r| r.category)
}

/// The category of a stack (frames root to leaf, as folded), by the rule
/// of the module's doc.
pub fn classify(frames: &[&str]) -> Category {
    if let Some(c) = frames.iter().rev().find_map(|f| of_frame(f)) {
        return c;
    }
    // Nothing named: a stack whose leaf is in user space (the first frame
    // is the thread's name, not code) is the process's own code.
    match frames.split_first() {
        Some((_, code)) if code.last().is_some_and(|leaf| split(leaf).0 == Space::User) => User,
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::breakdown::Counts;

    /// Real profiles of release builds (the binaries that every sweep and
    /// `scripts/try` run), trimmed to the stacks seen at least 3 times
    /// (`awk '$NF >= 3003003'`: 3 samples of 1,001,001 ns): the server's
    /// `server.folded` from
    /// `scripts/try mio-single -- -c 200 --duration 5s --profile DIR`,
    /// and the same with `thread-per-conn` and `uring` at `-c 1000`
    /// (every CPU sampled at 999 Hz over the 5 s window), on this
    /// project's 2-core VM while other builds ran on it (load average
    /// about 70): the shares, not the throughput, are what they pin.
    const FIXTURES: [(&str, &str); 3] = [
        ("mio-single", include_str!("fixtures/mio-single.folded")),
        ("thread-per-conn", include_str!("fixtures/thread-per-conn.folded")),
        ("uring", include_str!("fixtures/uring.folded")),
    ];

    #[test]
    fn the_table_names_at_least_90_percent_of_every_fixture() {
        for (name, folded) in FIXTURES {
            let share = Counts::of_folded(folded).named_share();
            assert!(share >= 0.9, "{name}: named share {share:.3}");
        }
    }

    /// The fixtures' breakdowns, pinned: taking out any rule a fixture
    /// exercises moves samples to another category and fails this test.
    #[test]
    fn the_fixtures_break_down_as_pinned() {
        // Whole samples (the folded counts are ns) per category, in the
        // order of Category::ALL: user, syscall, socket, tcp_ip,
        // readiness, scheduler, memory, other.
        let expected = [
            ("mio-single", [62, 66, 241, 524, 57, 5, 27, 0]),
            ("thread-per-conn", [101, 42, 124, 187, 0, 222, 20, 0]),
            ("uring", [38, 12, 305, 513, 90, 14, 28, 0]),
        ];
        for ((name, folded), (_, want)) in FIXTURES.iter().zip(expected) {
            let counts = Counts::of_folded(folded);
            let got = Category::ALL.map(|c| counts.by_category.get(&c).copied().unwrap_or(0) / 1_001_001);
            assert_eq!(got, want, "{name}");
        }
    }

    /// Every rule can fire: no earlier rule shadows it.
    #[test]
    fn every_rule_is_reachable() {
        for r in RULES {
            let name = r.pattern.replace('*', "_x");
            let frame = match r.space {
                Space::Kernel => format!("{name}_[k]"),
                Space::User => name.clone(),
            };
            assert_eq!(classify(&["comm", &frame]), r.category, "{} is shadowed", r.pattern);
        }
    }

    #[test]
    fn the_innermost_named_frame_wins() {
        let wake =
            ["conn", "write", "entry_SYSCALL_64_[k]", "tcp_sendmsg_[k]", "try_to_wake_up_[k]", "_raw_spin_lock_[k]"];
        assert_eq!(classify(&wake), Scheduler);
        assert_eq!(classify(&wake[..4]), Socket);
        assert_eq!(classify(&["conn", "write", "entry_SYSCALL_64_[k]", "unnamed_[k]"]), Syscall);
        assert_eq!(classify(&["conn", "main", "serve"]), User);
        assert_eq!(classify(&["conn", "unnamed_[k]"]), Other);
        assert_eq!(classify(&["c", "finish_task_switch.isra.0_[k]"]), Scheduler);
    }
}
