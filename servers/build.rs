//! Build script: with the `libevent` feature, compile the seed's libevent
//! server (csrc/libevent_server.c) and link the system's libevent 2.1.
//! Without the feature it does nothing, so the workspace builds on a
//! machine that has no libevent-dev.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "libevent")]
    libevent::build();
}

#[cfg(feature = "libevent")]
mod libevent {
    use std::path::PathBuf;
    use std::process::Command;

    const SOURCE: &str = "csrc/libevent_server.c";
    const HINT: &str =
        "install libevent-dev (as root on Debian/Ubuntu: scripts/install-deps), or build without --features libevent";

    pub fn build() {
        println!("cargo:rerun-if-changed={SOURCE}");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        let (include_dirs, link) = flags();
        let mut search = include_dirs.clone();
        search.extend(["/usr/include", "/usr/local/include"].map(PathBuf::from));
        if !search.iter().any(|dir| dir.join("event2/bufferevent.h").is_file()) {
            panic!("--features libevent: the libevent 2.1 headers (event2/bufferevent.h) are missing: {HINT}");
        }
        let mut build = cc::Build::new();
        build.file(SOURCE).includes(&include_dirs).warnings(true).extra_warnings(true).flag_if_supported("-std=c11");
        build.compile("iomodels_libevent");
        for arg in link {
            println!("cargo:{arg}");
        }
    }

    /// Include directories and link instructions, from `pkg-config libevent`
    /// when it knows the library, else the plain `-levent`.
    fn flags() -> (Vec<PathBuf>, Vec<String>) {
        let run = |args: &[&str]| -> Option<String> {
            let out = Command::new("pkg-config").args(args).arg("libevent").output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let (Some(cflags), Some(libs)) = (run(&["--cflags"]), run(&["--libs"])) else {
            println!("cargo:warning=pkg-config does not know libevent; linking plain -levent");
            return (Vec::new(), vec!["rustc-link-lib=event".to_string()]);
        };
        let includes = cflags.split_whitespace().filter_map(|f| f.strip_prefix("-I")).map(PathBuf::from).collect();
        let mut link = Vec::new();
        for flag in libs.split_whitespace() {
            if let Some(dir) = flag.strip_prefix("-L") {
                link.push(format!("rustc-link-search=native={dir}"));
            } else if let Some(lib) = flag.strip_prefix("-l") {
                link.push(format!("rustc-link-lib={lib}"));
            }
        }
        if !link.iter().any(|l| l.starts_with("rustc-link-lib=")) {
            panic!("--features libevent: `pkg-config --libs libevent` names no library: {HINT}");
        }
        (includes, link)
    }
}
