//! A private PostgreSQL cluster that a test can stop, freeze and restart:
//! initdb into a temp dir, a free port on 127.0.0.1, trust auth. As root the
//! server runs as the `postgres` user (PostgreSQL refuses to run as root).
//! [`Cluster::start_configured`] lets a test write files into the data
//! directory (certificates, `pg_hba.conf`, extra settings) before the first
//! start, and fails rather than skips when PostgreSQL is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest server under /usr/lib/postgresql, or `PG_BIN`.
fn find_bin() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

/// The server binaries, with pgvector installed for them, or why not.
fn usable_bin() -> Result<PathBuf, String> {
    let Some(bin) = find_bin() else {
        return Err("no PostgreSQL server binaries found (set PG_BIN)".to_string());
    };
    let major = bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string();
    let control = format!("/usr/share/postgresql/{major}/extension/vector.control");
    if Path::new(&control).exists() {
        Ok(bin)
    } else {
        Err(format!(
            "pgvector is not installed ({control} missing); run scripts/install-pgvector.sh"
        ))
    }
}

impl Cluster {
    /// Starts a new cluster, or explains why it cannot (fails under CI).
    pub fn start_new() -> Option<Cluster> {
        match usable_bin() {
            Ok(bin) => {
                let cluster = Self::init(bin);
                cluster.start();
                Some(cluster)
            }
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!("cannot start a private PostgreSQL cluster: {why}");
                }
                eprintln!("\n*** SKIPPING fault test: {why} ***\n");
                None
            }
        }
    }

    /// Creates a cluster, lets `configure` prepare its data directory (see
    /// [`Cluster::write_data_file`]), then starts it. Panics when PostgreSQL
    /// or pgvector is missing: for tests that must not be skipped.
    pub fn start_configured(configure: impl FnOnce(&Cluster)) -> Cluster {
        let bin = usable_bin()
            .unwrap_or_else(|why| panic!("cannot start a private PostgreSQL cluster: {why}"));
        let cluster = Self::init(bin);
        configure(&cluster);
        cluster.start();
        cluster
    }

    /// The data directory (`postgresql.conf`, `pg_hba.conf`, ...).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Writes (`append`: appends to) a file in the data directory, owned by
    /// the server's user with mode 0600 (what PostgreSQL wants of a key file).
    pub fn write_data_file(&self, name: &str, contents: &[u8], append: bool) {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let path = self.data_dir().join(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .unwrap();
        file.write_all(contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if self.as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&path)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {} failed", path.display());
        }
    }

    fn init(bin: PathBuf) -> Cluster {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("facegate-fault-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster directory failed");
        }
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        cluster
    }

    fn command(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, prog: &str, args: &[&str]) {
        let out = self.command(prog).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{prog} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
                "start",
            ],
        );
    }

    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// The postmaster and all its children (backends, background workers).
    fn pids(&self) -> Vec<String> {
        let pidfile = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let postmaster = pidfile.lines().next().unwrap().trim().to_string();
        let out = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .unwrap();
        let mut pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        pids.push(postmaster);
        pids
    }

    /// Sends `signal` to every server process; a child that exited meanwhile
    /// is no error, the postmaster must receive it.
    fn signal_all(&self, signal: &str) {
        let pids = self.pids();
        for (i, pid) in pids.iter().enumerate() {
            let ok = Command::new("kill")
                .args([signal, pid.as_str()])
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok || i + 1 < pids.len(), "could not signal the postmaster");
        }
    }

    /// Freezes every server process (SIGSTOP): sockets stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal_all("-STOP");
    }

    pub fn thaw(&self) {
        self.signal_all("-CONT");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = Command::new("kill")
                .arg("-CONT")
                .args(self.pids())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
