//! A throwaway PostgreSQL cluster for the black-box tests: one per test binary, started on first
//! use (`initdb` + `pg_ctl` in a temporary directory, on a free loopback port, `fsync=off`), and a
//! fresh database for every caller of [`database`].
//!
//! PostgreSQL refuses to run as root; when the tests do (CI), the cluster runs as the unprivileged
//! `postgres` user (created when missing), which owns its directory. A static is never dropped, so
//! a watchdog process (in its own session) holds the read end of a pipe whose write end only this
//! process has: when the test binary exits, however it exits, the watchdog reads end-of-file, stops
//! the cluster (`pg_ctl stop -m immediate`) and removes its directory.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The cluster's superuser; every database URL names it.
pub const SUPERUSER: &str = "jobtoken";

/// The running cluster of this test binary.
pub struct Cluster {
    /// The temporary directory: `data/` (the cluster), `server.log`, and the unix socket.
    pub dir: PathBuf,
    pub port: u16,
    /// How long the first use took: initdb, start, first connection.
    pub started_in: Duration,
    bindir: PathBuf,
    /// `Some(user)` when the cluster runs as that user because the tests run as root.
    run_as: Option<String>,
    admin: Mutex<postgres::Client>,
    databases: AtomicU32,
    /// The watchdog, with the write end of its pipe: closed by the kernel when this process exits.
    _watchdog: Mutex<Child>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// This binary's cluster, started (race-free) by the first caller.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// A fresh, empty database on this binary's cluster: its libpq-style URL,
/// `postgres://jobtoken@127.0.0.1:PORT/jt_N`.
pub fn database() -> String {
    database_with("")
}

/// Like [`database`], with extra `CREATE DATABASE` options (`TEMPLATE template0 LOCALE_PROVIDER icu …`).
pub fn database_with(options: &str) -> String {
    cluster().new_database(options)
}

/// A cluster of the caller's own, not shared with the other tests of the binary: one to stop and
/// start ([`Cluster::stop`], [`Cluster::start_again`]). Its watchdog removes it when dropped.
pub fn private_cluster() -> Cluster {
    Cluster::start()
}

/// A connection to a database URL from [`database`].
pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

impl Cluster {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh, empty database on this cluster (see [`database_with`]).
    pub fn new_database(&self, options: &str) -> String {
        let name = format!("jt_{}", self.databases.fetch_add(1, Ordering::SeqCst) + 1);
        let mut admin = self.admin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        admin.batch_execute(&format!("CREATE DATABASE {name} {options}")).unwrap_or_else(|e| {
            panic!("CREATE DATABASE {name} {options}: {e}");
        });
        self.url(&name)
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: every session is terminated) and waits for it.
    pub fn stop(&self) {
        let mut pg_ctl = command(&self.bindir, self.run_as.as_deref(), "pg_ctl");
        pg_ctl.arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(pg_ctl, "pg_ctl stop");
    }

    /// Starts the cluster again after [`Cluster::stop`], on the same port, and waits for it.
    pub fn start_again(&self) {
        let mut pg_ctl = command(&self.bindir, self.run_as.as_deref(), "pg_ctl");
        pg_ctl.arg("-D").arg(self.dir.join("data")).arg("-l").arg(self.dir.join("server.log"));
        pg_ctl.args(["-w", "-t", "60", "start"]);
        run(pg_ctl, "pg_ctl start");
        // The admin connection died with the old server.
        *self.admin.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port));
    }

    /// The cluster's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn start() -> Cluster {
        Cluster::start_with(&Setup::default())
    }

    /// Starts a cluster with `setup`'s extra files, settings and client authentication.
    pub fn start_with(setup: &Setup) -> Cluster {
        let begun = Instant::now();
        let bindir = bindir();
        let run_as = running_as_root().then(unprivileged_user);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("jobtoken-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(user) = &run_as {
            let (uid, gid) = (id(user, "-u"), id(user, "-g"));
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        // First, so that a failure from here on leaves nothing behind either.
        let watchdog = watchdog(&bindir, run_as.as_deref(), &dir);
        let data = dir.join("data");
        let mut initdb = command(&bindir, run_as.as_deref(), "initdb");
        initdb.arg("-D").arg(&data).args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        run(initdb, "initdb");
        // Trust, but only on the socket in our own directory and on 127.0.0.1.
        let hba = setup.hba.as_deref().unwrap_or("local all all trust\nhost all all 127.0.0.1/32 trust\n");
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        for (name, contents) in &setup.files {
            let path = data.join(name);
            std::fs::write(&path, contents).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            if let Some(user) = &run_as {
                std::os::unix::fs::chown(&path, Some(id(user, "-u")), Some(id(user, "-g"))).unwrap();
            }
        }

        let mut attempt = 0;
        let port = loop {
            attempt += 1;
            let port = free_port();
            let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
            writeln!(
                conf,
                "\n# jobtoken test harness (the last setting wins)\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{}'\nfsync = off\nfull_page_writes = off\nmax_connections = 300\n{}\n",
                dir.display(),
                setup.conf
            )
            .unwrap();
            let mut pg_ctl = command(&bindir, run_as.as_deref(), "pg_ctl");
            pg_ctl.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "-t", "60", "start"]);
            match pg_ctl.output() {
                Ok(out) if out.status.success() => break port,
                // Another process took the port between our probe and the server's bind: try another.
                _ if attempt < 5 => continue,
                other => panic!(
                    "pg_ctl start failed ({other:?}):\n{}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                ),
            }
        };
        let admin = connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres"));
        Cluster {
            dir,
            port,
            started_in: begun.elapsed(),
            bindir,
            run_as,
            admin: Mutex::new(admin),
            databases: AtomicU32::new(0),
            _watchdog: Mutex::new(watchdog),
        }
    }
}

/// What a cluster of [`Cluster::start_with`] has beyond the default one.
#[derive(Debug, Default)]
pub struct Setup {
    /// `pg_hba.conf` (default: trust on the socket and on 127.0.0.1).
    pub hba: Option<String>,
    /// Lines appended to `postgresql.conf`.
    pub conf: String,
    /// Files written into the data directory (mode 0600, owned by the cluster's user).
    pub files: Vec<(String, Vec<u8>)>,
}

/// Where the server binaries are: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
fn bindir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort();
    candidates.extend(debian.into_iter().rev().map(|(_, bin)| bin));
    candidates.into_iter().find(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).unwrap_or_else(
        || {
            panic!(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package (.ci/run does)"
            )
        },
    )
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The user the cluster runs as under root: `postgres`, created as a system user when missing.
fn unprivileged_user() -> String {
    let user = "postgres";
    if !Command::new("id").arg("-u").arg(user).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success() {
        let mut useradd = Command::new("useradd");
        useradd.args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user]);
        run(useradd, "useradd");
    }
    user.to_owned()
}

fn id(user: &str, flag: &str) -> u32 {
    let out = Command::new("id").arg(flag).arg(user).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("id {flag} {user}: {out:?}"))
}

/// `BINDIR/program`, run as `run_as` (through `runuser`) when given.
fn command(bindir: &Path, run_as: Option<&str>, program: &str) -> Command {
    let program = bindir.join(program);
    let mut cmd = match run_as {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.stdin(Stdio::null()).env("LC_ALL", "C");
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the process that stops the cluster and removes `dir` once this process is gone: it
/// blocks reading a pipe (close-on-exec, so no other child holds it) until end-of-file.
fn watchdog(bindir: &Path, run_as: Option<&str>, dir: &Path) -> Child {
    let pg_ctl = bindir.join("pg_ctl");
    let stop = match run_as {
        Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
        None => format!("'{}'", pg_ctl.display()),
    };
    let script = format!(
        "read -r _ || true; {stop} -D '{dir}/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the PostgreSQL watchdog (setsid sh)")
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("bindir", &self.bindir)
            .field("run_as", &self.run_as)
            .finish()
    }
}
