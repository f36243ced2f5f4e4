//! A throwaway PostgreSQL cluster for the black-box tests: one per test process, started on first
//! use (`initdb` + `pg_ctl` in a temporary directory, on a free loopback port, with durability
//! off: `fsync`, `synchronous_commit` and `full_page_writes`, which only a crash of the whole
//! machine would need), and a fresh database for every caller of [`database`] (empty) or
//! [`migrated_database`] (a copy of one template database migrated once per cluster, for servers).
//!
//! `tests/on_postgres.rs` compiles many suites into one process, each with its own copy of this
//! module: the first copy to get here (under a lock file named after the process) starts the
//! cluster and writes its port next to it; the others join it. Database names come from a
//! sequence in the cluster, so they never collide between copies.
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
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The cluster's superuser; every database URL names it.
pub const SUPERUSER: &str = "jobtoken";

/// The running cluster of this test process.
pub struct Cluster {
    /// The temporary directory: `data/` (the cluster), `server.log`, and the unix socket.
    pub dir: PathBuf,
    pub port: u16,
    /// How long the first use took: initdb, start, first connection (or joining a running one).
    pub started_in: Duration,
    bindir: PathBuf,
    /// `Some(user)` when the cluster runs as that user because the tests run as root.
    run_as: Option<String>,
    admin: Mutex<postgres::Client>,
    /// The watchdog, with the write end of its pipe: closed by the kernel when this process exits
    /// (`None` in a copy of this module that joined the cluster another copy started).
    _watchdog: Option<Mutex<Child>>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static TEMPLATE: OnceLock<()> = OnceLock::new();

/// The database every [`migrated_database`] copies: migrated by `jobtoken migrate` once per cluster.
const TEMPLATE_DB: &str = "jt_template";

/// This process's cluster, started (race-free) by the first caller.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start_or_join)
}

/// A fresh database with jobtoken's schema already applied (what a first `jobtoken serve` would
/// do), copied from the cluster's template: cheaper than migrating for every server.
pub fn migrated_database() -> String {
    let cluster = cluster();
    TEMPLATE.get_or_init(|| cluster.make_template());
    database_with(&format!("TEMPLATE {TEMPLATE_DB}"))
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
    Cluster::start_with(&Setup::default())
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
        let mut admin = self.admin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n: i64 = admin.query_one("SELECT nextval('jt_databases')", &[]).unwrap().get(0);
        let name = format!("jt_{n}");
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

    /// Migrates [`TEMPLATE_DB`] unless another copy of this module did (an advisory lock
    /// serialises them).
    fn make_template(&self) {
        let mut admin = self.admin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        admin.batch_execute("SELECT pg_advisory_lock(8080)").unwrap();
        let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&TEMPLATE_DB]).unwrap();
        if exists.is_none() {
            let building = format!("{TEMPLATE_DB}_building");
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {building}")).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {building}")).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_jobtoken"))
                .arg("migrate")
                .env_clear()
                .env("JOBTOKEN_DATABASE", self.url(&building))
                .env("JOBTOKEN_KEYS_DIR", self.dir.join("template-keys"))
                .output()
                .unwrap();
            assert!(out.status.success(), "jobtoken migrate of the template: {out:?}");
            // The migrating process has exited, but its backend may still be on its way out.
            let renamed = format!("ALTER DATABASE {building} RENAME TO {TEMPLATE_DB}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Err(e) = admin.batch_execute(&renamed) {
                assert!(Instant::now() < deadline, "{renamed}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        admin.batch_execute("SELECT pg_advisory_unlock(8080)").unwrap();
    }

    /// Starts a cluster of the caller's own (see [`private_cluster`]) with `setup`'s extra files,
    /// settings and client authentication.
    pub fn start_with(setup: &Setup) -> Cluster {
        static PRIVATE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = PRIVATE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = scratch_space().join(format!("jobtoken-pg-{}-private-{n}-{nanos}", std::process::id()));
        Cluster::start(dir, Instant::now(), setup)
    }

    /// Starts this process's cluster, or joins the one another copy of this module started.
    fn start_or_join() -> Cluster {
        let begun = Instant::now();
        // Named after this process and its start time, so a reused pid never finds a stale one.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let started = stat.rsplit(')').next().unwrap().split_whitespace().nth(19).unwrap().to_owned();
        let dir = scratch_space().join(format!("jobtoken-pg-{}-{started}", std::process::id()));
        let lock = LockFile::take(dir.with_extension("lock"));
        let joined = std::fs::read_to_string(dir.join("port")).ok().and_then(|p| p.trim().parse::<u16>().ok());
        let cluster = match joined {
            Some(port) => Cluster {
                admin: Mutex::new(connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres"))),
                dir,
                port,
                started_in: begun.elapsed(),
                bindir: bindir(),
                run_as: running_as_root().then(unprivileged_user),
                _watchdog: None,
            },
            None => {
                let cluster = Cluster::start(dir, begun, &Setup::default());
                let port_file = cluster.dir.with_extension("port");
                std::fs::write(&port_file, cluster.port.to_string()).unwrap();
                std::fs::rename(&port_file, cluster.dir.join("port")).unwrap();
                cluster
            }
        };
        drop(lock);
        cluster
    }

    fn start(dir: PathBuf, begun: Instant, setup: &Setup) -> Cluster {
        let bindir = bindir();
        let run_as = running_as_root().then(unprivileged_user);
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
                 unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 max_connections = 300\n{}\n",
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
        let mut admin = connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres"));
        admin.batch_execute("CREATE SEQUENCE jt_databases").unwrap();
        Cluster {
            dir,
            port,
            started_in: begun.elapsed(),
            bindir,
            run_as,
            admin: Mutex::new(admin),
            _watchdog: Some(Mutex::new(watchdog)),
        }
    }
}

/// A lock between the copies of this module in one process: the file exists while one holds it
/// (it is named after the process, so no other process ever waits on it), removed when dropped,
/// panics included.
struct LockFile(PathBuf);

impl LockFile {
    fn take(path: PathBuf) -> LockFile {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return LockFile(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("taking {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where the cluster lives: in memory (`/dev/shm`) when it has room for a few thousand test
/// databases (copying one is then all memory traffic, none of it waits on the disk that other
/// builds share), else the temporary directory. Docker's default 64 MB `/dev/shm` is too small.
fn scratch_space() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let df = Command::new("df").args(["-Pk"]).arg(shm).output();
    let free_kib = df.ok().and_then(|out| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().nth(1)?.split_whitespace().nth(3)?.parse::<u64>().ok()
    });
    match free_kib {
        Some(kib) if kib >= 4 << 20 => shm.to_owned(),
        _ => std::env::temp_dir(),
    }
}

/// Drops a database from [`database`] or [`migrated_database`] (when the test that used it is done
/// with it, so that a run of hundreds of tests keeps only the databases in use).
pub fn drop_database(url: &str) {
    let Some(cluster) = CLUSTER.get() else { return };
    let Some(name) = url.rsplit('/').next().filter(|name| name.starts_with("jt_")) else { return };
    // Only a database of this cluster (a private cluster's have names of the same form).
    if url != cluster.url(name) {
        return;
    }
    let mut admin = cluster.admin.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
        eprintln!("DROP DATABASE {name}: {e}");
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
        "read -r _ || true; {stop} -D '{dir}/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}' '{dir}.lock' '{dir}.port'",
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
