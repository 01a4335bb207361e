//! Real `redis-server` instances for the Redis integration tests. Each test starts its own servers (a unix socket
//! in a fresh temp dir, or a free loopback TCP port), controls them (kill, pause, resume, restart), checks key
//! hygiene, and stops them by pid when dropped. Also: a 3-primary cluster, TLS with a throwaway CA, and a proxy
//! that swallows replies. Nothing here ever starts or contacts a server on port 6379.
//!
//! Include with `#[path = "support/redis.rs"] mod redis_support;`. Needs `redis-server`, `redis-cli` and, for
//! TLS, `openssl` on PATH (`scripts/test.sh` installs Debian's packages when it can).
//!
//! ```ignore
//! let mut server = RedisServer::builder().tcp().aof().start(); // or RedisServer::start(): unix socket
//! let client = redis::Client::open(server.url())?;             // redis+unix://, redis://, rediss://
//! server.pause(); /* calls must give up within their deadline */ server.resume();
//! server.restart();                                             // same port; AOF data back
//! assert!(server.keys_without_ttl("xg:*").iter().all(|key| key.ends_with(":cfg")));
//! let proxy = ReplyDroppingProxy::start(server.addr());         // a client on proxy.url()
//! proxy.drop_next_replies(1);                                   // the script runs, its reply is lost
//! let tls = RedisServer::builder().tls().start();               // trust tls.ca_cert_pem()
//! let cluster = RedisCluster::start();                          // ClusterClient::new(cluster.seed_urls())
//! ```
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The port no test may use: a developer's or the machine's own Redis.
pub const FORBIDDEN_PORT: u16 = 6379;
const LOOPBACK: &str = "127.0.0.1";
const INSTALL_HINT: &str =
    "apt-get install -y redis-server redis-tools (Debian's packages; scripts/test.sh installs them as root)";
// Generous bounds for a loaded 2-core machine; they only turn a hang into a failure, nothing is timed.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const CLI_TIMEOUT: Duration = Duration::from_secs(20);
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// A randomly chosen port can be taken by another process before the server binds it; try a new one this often.
const PORT_ATTEMPTS: usize = 5;
/// Unix socket paths are limited to 108 bytes (sun_path); stay clear of it.
const MAX_SOCKET_PATH: usize = 100;

// ---------------------------------------------------------------------------------------------------------------
// Server

/// How clients reach the server. The unix socket in the server's dir is always there too: the helpers here
/// (`cli`, `command`, `keys`, readiness) use it, so they work whatever the client transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Unix,
    Tcp,
    Tls,
}

#[derive(Clone, Debug)]
pub struct AclUser {
    pub name: String,
    pub password: String,
    pub rules: Vec<String>,
}

/// Options for a [`RedisServer`]; `RedisServer::builder()...start()`.
#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    transport: Transport,
    aof: bool,
    cluster_node: bool,
    extra_args: Vec<String>,
    users: Vec<AclUser>,
}

impl RedisConfig {
    /// Clients connect over a free loopback TCP port (needed to restart on the same port, or for a proxy).
    pub fn tcp(mut self) -> Self {
        self.transport = Transport::Tcp;
        self
    }

    /// Clients connect over TLS on a free loopback port, trusting [`RedisServer::ca_cert_path`].
    pub fn tls(mut self) -> Self {
        self.transport = Transport::Tls;
        self
    }

    /// Append-only file with `appendfsync everysec`; it survives [`RedisServer::restart`].
    pub fn aof(mut self) -> Self {
        self.aof = true;
        self
    }

    /// Any other setting, e.g. `config("maxmemory-policy", "allkeys-lru")`; a value with spaces gives several
    /// arguments (`config("client-output-buffer-limit", "normal 0 0 0")`).
    pub fn config(mut self, name: &str, value: &str) -> Self {
        self.extra_args.push(format!("--{name}"));
        self.extra_args.extend(value.split_whitespace().map(str::to_owned));
        self
    }

    /// An ACL user that may run only what `rules` allow, e.g. `&["~xg:*", "+ping", "+evalsha"]`. The default
    /// user stays unrestricted (the helpers use it). Name and password: letters, digits, `-`, `_` (URL-safe).
    pub fn acl_user(mut self, name: &str, password: &str, rules: &[&str]) -> Self {
        for part in [name, password] {
            assert!(
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "ACL user name and password must be non-empty and URL-safe: {part:?}"
            );
        }
        self.users.push(AclUser {
            name: name.to_owned(),
            password: password.to_owned(),
            rules: rules.iter().map(|rule| (*rule).to_owned()).collect(),
        });
        self
    }

    /// SLOWLOG keeps every command (with its arguments, the server's truncation aside), up to 100,000: see
    /// [`RedisServer::slowlog`].
    pub fn log_every_command(self) -> Self {
        self.config("slowlog-log-slower-than", "0").config("slowlog-max-len", "100000")
    }

    fn cluster_node(mut self) -> Self {
        self.transport = Transport::Tcp;
        self.cluster_node = true;
        self
    }

    pub fn start(self) -> RedisServer {
        RedisServer::launch_new(self)
    }
}

/// One `redis-server` process owned by a test: killed by pid and reaped on drop (also when the test panics),
/// its dir removed. It also dies with the test process (a parent-death signal), so an aborted run leaves nothing.
pub struct RedisServer {
    config: RedisConfig,
    child: Option<Child>,
    pid: u32,
    paused: bool,
    /// The TCP or TLS port clients use; None for a unix-socket-only server.
    port: Option<u16>,
    cluster_bus_port: Option<u16>,
    tls: Option<TlsFiles>,
    dir: TempDir,
}

impl RedisServer {
    pub fn builder() -> RedisConfig {
        RedisConfig::default()
    }

    /// The default server: unix socket only, no persistence.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// No persistence, on a free loopback TCP port.
    pub fn start_tcp() -> Self {
        Self::builder().tcp().start()
    }

    fn launch_new(config: RedisConfig) -> Self {
        let dir = new_server_dir();
        let tls = (config.transport == Transport::Tls).then(|| TlsFiles::generate(dir.path()));
        let mut server =
            RedisServer { config, child: None, pid: 0, paused: false, port: None, cluster_bus_port: None, tls, dir };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            if server.config.transport != Transport::Unix {
                server.port = Some(free_port());
            }
            if server.config.cluster_node {
                server.cluster_bus_port = Some(free_port());
            }
            match server.launch() {
                Ok(()) => return server,
                Err(LaunchError::PortTaken(log)) => last_error = log,
                Err(LaunchError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!("redis-server found its port taken {PORT_ATTEMPTS} times in a row; last log:\n{last_error}");
    }

    fn args(&self) -> Vec<String> {
        let dir = self.dir.path();
        let mut args: Vec<String> = vec![
            "--bind".into(),
            LOOPBACK.into(),
            "--unixsocket".into(),
            self.socket_path().display().to_string(),
            "--unixsocketperm".into(),
            "700".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            dir.join("redis.log").display().to_string(),
            "--daemonize".into(),
            "no".into(),
            "--save".into(),
            String::new(),
            // Lets tests use DEBUG (e.g. DEBUG SLEEP) from loopback and the unix socket only.
            "--enable-debug-command".into(),
            "local".into(),
        ];
        let tcp_port = if self.config.transport == Transport::Tcp { self.port } else { None };
        args.extend(["--port".into(), tcp_port.unwrap_or(0).to_string()]);
        if let Some(tls) = &self.tls {
            let port = self.port.expect("a TLS server has a port");
            args.extend([
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                tls.server_cert.display().to_string(),
                "--tls-key-file".into(),
                tls.server_key.display().to_string(),
                "--tls-ca-cert-file".into(),
                tls.ca_cert.display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ]);
        }
        if self.config.aof {
            args.extend(["--appendonly", "yes", "--appendfsync", "everysec"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        if let Some(bus_port) = self.cluster_bus_port {
            args.extend([
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                dir.join("nodes.conf").display().to_string(),
                "--cluster-port".into(),
                bus_port.to_string(),
            ]);
        }
        for user in &self.config.users {
            args.extend(["--user".into(), user.name.clone(), "on".into(), format!(">{}", user.password)]);
            args.extend(user.rules.iter().cloned());
        }
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Starts the process on the current port and dir and waits until it answers PING.
    fn launch(&mut self) -> Result<(), LaunchError> {
        for port in [self.port, self.cluster_bus_port].into_iter().flatten() {
            assert_ne!(port, FORBIDDEN_PORT, "never start a test server on the default Redis port");
        }
        // Early errors (before the log file opens) go to stderr; a file, so a full pipe can never block the server.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stderr.log"))
            .expect("open stderr.log");
        let mut command = Command::new("redis-server");
        command.args(self.args()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let mut child = spawn_tied_to_test_process(command)
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): {INSTALL_HINT}"));
        self.pid = child.id();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waitpid on redis-server") {
                let log = self.log();
                return Err(if log.contains("Address already in use") {
                    LaunchError::PortTaken(log)
                } else {
                    LaunchError::Failed(format!("redis-server exited at start ({status}); its log:\n{log}"))
                });
            }
            if ping_once(&self.socket_path()) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LaunchError::Failed(format!(
                    "redis-server (pid {}) did not answer PING within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.pid,
                    self.log()
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    // -- where it is -------------------------------------------------------------------------------------------

    /// The URL a client uses, in the forms the `redis` crate accepts: `redis+unix:///…/redis.sock`,
    /// `redis://127.0.0.1:PORT` or `rediss://127.0.0.1:PORT` (trust [`Self::ca_cert_path`]).
    pub fn url(&self) -> String {
        match self.config.transport {
            Transport::Unix => format!("redis+unix://{}", self.socket_path().display()),
            Transport::Tcp => format!("redis://{LOOPBACK}:{}", self.client_port()),
            Transport::Tls => format!("rediss://{LOOPBACK}:{}", self.client_port()),
        }
    }

    /// [`Self::url`] with an ACL user's credentials: `redis://user:pass@…`, or `?user=…&pass=…` for a socket.
    pub fn url_for_user(&self, name: &str) -> String {
        let user = self.acl_user(name);
        match self.config.transport {
            Transport::Unix => {
                format!("redis+unix://{}?user={}&pass={}", self.socket_path().display(), user.name, user.password)
            }
            Transport::Tcp | Transport::Tls => {
                let scheme = if self.config.transport == Transport::Tls { "rediss" } else { "redis" };
                format!("{scheme}://{}:{}@{LOOPBACK}:{}", user.name, user.password, self.client_port())
            }
        }
    }

    pub fn transport(&self) -> Transport {
        self.config.transport
    }

    /// The TCP or TLS port clients use (None: unix socket only).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The TCP or TLS address clients use; panics for a unix-socket-only server.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port()))
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM) a TLS client must trust; None unless started with `tls()`.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|tls| tls.ca_cert.as_path())
    }

    pub fn ca_cert_pem(&self) -> Option<Vec<u8>> {
        self.ca_cert_path().map(|path| std::fs::read(path).expect("read the test CA certificate"))
    }

    /// The pid of the current (or, after `kill`, the last) process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's log (and anything it wrote to stderr).
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("redis.log"))
    }

    fn client_port(&self) -> u16 {
        self.port.expect("this server listens on a unix socket only; start it with tcp() or tls()")
    }

    fn acl_user(&self, name: &str) -> &AclUser {
        self.config.users.iter().find(|user| user.name == name).unwrap_or_else(|| panic!("no ACL user {name:?}"))
    }

    // -- control ------------------------------------------------------------------------------------------------

    /// SIGKILL and reap: the server is gone at once, without a chance to write anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP: the kernel still accepts connections, but nothing is ever answered until [`Self::resume`].
    /// Returns once the process is stopped.
    pub fn pause(&mut self) {
        assert!(self.child.is_some(), "pause: the server is not running");
        send_signal(self.pid, libc::SIGSTOP);
        wait_for_process_state(self.pid, true);
        self.paused = true;
    }

    /// SIGCONT: a paused server answers again (requests sent meanwhile included).
    pub fn resume(&mut self) {
        assert!(self.child.is_some(), "resume: the server is not running");
        send_signal(self.pid, libc::SIGCONT);
        wait_for_process_state(self.pid, false);
        self.paused = false;
    }

    /// Kills the server if it runs (SIGKILL, like a crash) and starts it again on the same port, socket and dir;
    /// with `aof()` the data comes back from the append-only file, otherwise the server starts empty.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(LaunchError::PortTaken(log) | LaunchError::Failed(log)) = self.launch() {
            panic!("restart on the same port failed:\n{log}");
        }
    }

    // -- talking to it ------------------------------------------------------------------------------------------

    /// Runs `redis-cli` as the default user over the unix socket; its output (raw mode, trailing newline
    /// removed). Error replies come back as text (`ERR …`, `NOPERM …`); a failing redis-cli panics.
    pub fn cli(&self, args: &[&str]) -> String {
        let socket = self.socket_path().display().to_string();
        run_cli(&[&["-s", &socket], args].concat())
    }

    /// `redis-cli` as an ACL user (see [`RedisConfig::acl_user`]) over the unix socket.
    pub fn cli_as(&self, name: &str, args: &[&str]) -> String {
        let user = self.acl_user(name);
        let socket = self.socket_path().display().to_string();
        let login = ["-s", &socket, "--user", &user.name, "--pass", &user.password, "--no-auth-warning"];
        run_cli(&[&login[..], args].concat())
    }

    /// `redis-cli` over the client transport: TCP, or TLS trusting the test CA (`--tls --cacert`).
    pub fn cli_network(&self, args: &[&str]) -> String {
        let flags = self.network_cli_flags();
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        run_cli(&all)
    }

    /// The redis-cli flags that reach this server over its client transport.
    pub fn network_cli_flags(&self) -> Vec<String> {
        let mut flags = vec!["-h".to_owned(), LOOPBACK.to_owned(), "-p".to_owned(), self.client_port().to_string()];
        if let Some(tls) = &self.tls {
            flags.extend(["--tls".to_owned(), "--cacert".to_owned(), tls.ca_cert.display().to_string()]);
        }
        flags
    }

    /// One command as the default user over the unix socket, with its parsed reply.
    pub fn command(&self, args: &[&str]) -> Resp {
        self.admin_connection().call(args).unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.url()))
    }

    /// The server's SLOWLOG (`SLOWLOG GET -1`), newest first: each command's time on the server and its
    /// arguments as text. A function's nested commands come before it (they end first).
    pub fn slowlog(&self) -> Vec<LoggedCommand> {
        let Resp::Array(entries) = self.command(&["SLOWLOG", "GET", "-1"]) else {
            panic!("SLOWLOG GET answers an array")
        };
        entries
            .iter()
            .filter_map(|entry| {
                let Resp::Array(fields) = entry else { return None };
                let (Some(Resp::Integer(micros)), Some(Resp::Array(args))) = (fields.get(2), fields.get(3)) else {
                    return None;
                };
                Some(LoggedCommand { micros: *micros, args: args.iter().map(Resp::text).collect() })
            })
            .collect()
    }

    /// A connection as the default user over the unix socket (bounded reads).
    pub fn admin_connection(&self) -> RespConnection {
        RespConnection::unix(&self.socket_path()).unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// Every key matching `pattern` (SCAN, so it works on a big keyspace), sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        scan_keys(&mut self.admin_connection(), pattern)
    }

    /// The keys matching `pattern` that have no TTL (PTTL = -1), sorted: every key but a config should expire.
    pub fn keys_without_ttl(&self, pattern: &str) -> Vec<String> {
        let mut connection = self.admin_connection();
        let keys = scan_keys(&mut connection, pattern);
        keys_without_ttl(&mut connection, keys)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped (paused) process; then the TempDir removes the dir.
        self.kill();
    }
}

enum LaunchError {
    /// Another process bound the chosen port first (with the server's log).
    PortTaken(String),
    Failed(String),
}

fn new_server_dir() -> TempDir {
    let make = |parent: &Path| tempfile::Builder::new().prefix("xg-redis-").tempdir_in(parent);
    let dir = make(&std::env::temp_dir()).expect("create a temp dir for redis-server");
    if dir.path().join("redis.sock").as_os_str().len() <= MAX_SOCKET_PATH {
        return dir;
    }
    // A long TMPDIR would not fit a unix socket path.
    make(Path::new("/tmp")).expect("create a temp dir for redis-server under /tmp")
}

/// A free loopback port: bind port 0, read it, release it. Never the default Redis port.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if port != FORBIDDEN_PORT {
            return port;
        }
    }
}

/// Spawns from one long-lived thread with a parent-death signal, so servers die with the test process even when
/// it is killed before any Drop runs (the signal follows the spawning thread, hence a thread that never ends).
fn spawn_tied_to_test_process(mut command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("redis-spawner".into())
            .spawn(move || {
                for (mut command, reply) in requests {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the redis-spawner thread");
        sender
    });
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    spawner.send((command, reply)).expect("redis-spawner thread is alive");
    answer.recv().expect("redis-spawner thread answers")
}

fn send_signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid this module spawned and has not reaped (the caller checks it is running).
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal}): {}", io::Error::last_os_error());
}

/// Waits (bounded) until /proc says the process is stopped (`T`) or not, so pause/resume have taken effect.
fn wait_for_process_state(pid: u32, stopped: bool) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses: "pid (comm) S ...".
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        if state.map(|state| state == 'T') == Some(stopped) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} did not become {}: {stat}",
            if stopped { "stopped" } else { "running" }
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// True if the server at `socket` answers PING with PONG (not LOADING, not refused).
fn ping_once(socket: &Path) -> bool {
    RespConnection::unix(socket)
        .and_then(|mut connection| connection.call(&["PING"]))
        .is_ok_and(|reply| reply == Resp::Simple("PONG".into()))
}

fn scan_keys(connection: &mut RespConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let reply = connection.call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]).expect("SCAN");
        let Resp::Array(parts) = reply else { panic!("SCAN replied {reply:?}") };
        let [next, Resp::Array(batch)] = &parts[..] else { panic!("SCAN replied {parts:?}") };
        keys.extend(batch.iter().map(Resp::text));
        cursor = next.text();
        if cursor == "0" {
            break;
        }
    }
    keys.sort();
    keys.dedup(); // SCAN may return a key twice
    keys
}

fn keys_without_ttl(connection: &mut RespConnection, keys: Vec<String>) -> Vec<String> {
    keys.into_iter().filter(|key| connection.call(&["PTTL", key]).expect("PTTL") == Resp::Integer(-1)).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// redis-cli

fn run_cli(args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    command.args(args);
    let output =
        run_bounded(command, CLI_TIMEOUT).unwrap_or_else(|e| panic!("redis-cli {args:?}: {e} ({INSTALL_HINT})"));
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.strip_suffix('\n').map(str::to_owned).unwrap_or(text)
}

/// Runs a short-lived tool (redis-cli, openssl) and collects its output; killed and reported if it hangs.
pub fn run_bounded(mut command: Command, timeout: Duration) -> Result<Output, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Drain both pipes while waiting so a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let status = wait_bounded(&mut child, timeout);
    let output = |status: ExitStatus| Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    match status {
        Some(status) => Ok(output(status)),
        None => {
            let _ = child.kill();
            let status = child.wait().map_err(|e| e.to_string())?;
            let output = output(status);
            Err(format!(
                "{program} did not finish within {timeout:?} (a paused server?); output: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// TLS

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with the openssl CLI in the
/// server's temp dir (no key is ever committed). X.509 v3 with the extensions strict verifiers (rustls/webpki,
/// OpenSSL's X509_STRICT) require.
struct TlsFiles {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl TlsFiles {
    fn generate(dir: &Path) -> Self {
        let path = |name: &str| dir.join(name).display().to_string();
        let (ca_key, ca_cert) = (path("ca.key"), path("ca.crt"));
        let (server_key, server_csr, server_cert) = (path("server.key"), path("server.csr"), path("server.crt"));
        let extensions = dir.join("server-ext.cnf");
        std::fs::write(
            &extensions,
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = IP:127.0.0.1, DNS:localhost\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
        )
        .expect("write the certificate extensions");
        let new_ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509", "-new", "-days", "3", "-keyout", &ca_key, "-out", &ca_cert];
        ca.extend(new_ec_key);
        ca.extend(["-subj", "/CN=xeroguard test CA", "-addext", "basicConstraints=critical,CA:TRUE"]);
        ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&ca);
        let mut request = vec!["req", "-new", "-subj", "/CN=localhost", "-keyout", &server_key, "-out", &server_csr];
        request.extend(new_ec_key);
        openssl(&request);
        let serial = format!("0x{:016x}", random_u64());
        let extfile = extensions.display().to_string();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "3",
            "-in",
            &server_csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-extfile",
            &extfile,
            "-out",
            &server_cert,
        ]);
        TlsFiles { ca_cert: ca_cert.into(), server_cert: server_cert.into(), server_key: server_key.into() }
    }
}

/// A serial number unique enough for throwaway certificates (clients reject a reused issuer+serial pair).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() >> 1 // positive as a signed 64-bit serial
}

fn openssl(args: &[&str]) {
    let mut command = Command::new("openssl");
    command.args(args);
    let output = run_bounded(command, CLI_TIMEOUT)
        .unwrap_or_else(|e| panic!("openssl is needed for the TLS tests (apt-get install -y openssl): {e}"));
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster

/// Three primaries on free loopback ports (`--cluster-enabled yes`, one dir each, no replicas), joined with
/// `redis-cli --cluster create` and waited on until every node reports `cluster_state:ok`. Drop kills them all.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub const PRIMARIES: usize = 3;

    pub fn start() -> Self {
        let nodes: Vec<RedisServer> =
            (0..Self::PRIMARIES).map(|_| RedisServer::builder().cluster_node().start()).collect();
        let cluster = RedisCluster { nodes };
        let addresses: Vec<String> =
            cluster.nodes.iter().map(|node| format!("{LOOPBACK}:{}", node.addr().port())).collect();
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create").args(&addresses).args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output =
            run_bounded(command, CLUSTER_TIMEOUT).unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create {addresses:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok();
        cluster
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let expected_nodes = format!("cluster_known_nodes:{}", Self::PRIMARIES);
        loop {
            let infos: Vec<String> = self.nodes.iter().map(|node| node.command(&["CLUSTER", "INFO"]).text()).collect();
            let ready = infos.iter().all(|info| {
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains(&expected_nodes)
            });
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "cluster not ok within {CLUSTER_TIMEOUT:?}:\n{}", infos.join("\n"));
            thread::sleep(POLL_INTERVAL);
        }
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// `redis://127.0.0.1:PORT` of every primary, for a cluster client.
    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `redis-cli -c` (following MOVED/ASK) against the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        let port = self.nodes[0].addr().port().to_string();
        run_cli(&[&["-c", "-h", LOOPBACK, "-p", &port], args].concat())
    }

    /// The index of the node that holds `key` now (EXISTS on each), if any.
    pub fn node_holding(&self, key: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.command(&["EXISTS", key]) == Resp::Integer(1))
    }

    /// Matching keys over all nodes, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.nodes.iter().flat_map(|node| node.keys(pattern)).collect();
        keys.sort();
        keys
    }

    /// Matching keys without a TTL over all nodes, sorted.
    pub fn keys_without_ttl(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.nodes.iter().flat_map(|node| node.keys_without_ttl(pattern)).collect();
        keys.sort();
        keys
    }
}

// ---------------------------------------------------------------------------------------------------------------
// RESP: a minimal client for the helpers, and the frame boundaries the proxy needs

/// One command of [`RedisServer::slowlog`].
#[derive(Clone, Debug)]
pub struct LoggedCommand {
    /// Its time on the server (wall time: a server set aside by the machine's load logs that too).
    pub micros: i64,
    pub args: Vec<String>,
}

impl LoggedCommand {
    /// The command's name, upper case.
    pub fn name(&self) -> String {
        self.args.first().map(|name| name.to_ascii_uppercase()).unwrap_or_default()
    }
}

/// A parsed reply (RESP2, and RESP3 mapped onto it: maps and sets as flat arrays, doubles/booleans/big numbers
/// as simple strings, null as Nil; attributes skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Resp>),
    /// RESP3 out-of-band data (pub/sub, invalidations): not a reply to any request.
    Push(Vec<Resp>),
}

impl Resp {
    /// The text of a simple string, error, bulk string or integer (lossy UTF-8); panics on other replies.
    pub fn text(&self) -> String {
        match self {
            Resp::Simple(text) | Resp::Error(text) => text.clone(),
            Resp::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Resp::Integer(value) => value.to_string(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_))
    }
}

/// The first complete value in `buf` and the bytes it spans; None while more bytes are needed.
pub fn parse_resp(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    parse_resp_at(buf, 0)
}

fn parse_resp_at(buf: &[u8], start: usize) -> Result<Option<(Resp, usize)>, String> {
    let Some(&kind) = buf.get(start) else { return Ok(None) };
    let Some(line_end) = find_crlf(buf, start + 1) else { return Ok(None) };
    let line = std::str::from_utf8(&buf[start + 1..line_end]).map_err(|_| "RESP header is not UTF-8".to_owned())?;
    let after_line = line_end + 2;
    let number = || line.parse::<i64>().map_err(|_| format!("bad RESP length or integer {line:?}"));
    let value = match kind {
        b'+' | b',' | b'#' | b'(' => Resp::Simple(line.to_owned()),
        b'-' => Resp::Error(line.to_owned()),
        b':' => Resp::Integer(number()?),
        b'_' => Resp::Nil,
        b'$' | b'!' | b'=' => {
            let Ok(len) = usize::try_from(number()?) else { return Ok(Some((Resp::Nil, after_line))) };
            let end = after_line + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("RESP bulk string not followed by CRLF".into());
            }
            let bytes = buf[after_line..end].to_vec();
            let value = if kind == b'!' {
                Resp::Error(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Resp::Bulk(bytes)
            };
            return Ok(Some((value, end + 2)));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Ok(count) = usize::try_from(number()?) else { return Ok(Some((Resp::Nil, after_line))) };
            let elements = if matches!(kind, b'%' | b'|') { count * 2 } else { count };
            let mut items = Vec::new();
            let mut at = after_line;
            for _ in 0..elements {
                let Some((item, next)) = parse_resp_at(buf, at)? else { return Ok(None) };
                items.push(item);
                at = next;
            }
            return match kind {
                b'>' => Ok(Some((Resp::Push(items), at))),
                b'|' => parse_resp_at(buf, at), // an attribute describes the value that follows it
                _ => Ok(Some((Resp::Array(items), at))),
            };
        }
        other => return Err(format!("not RESP: type byte {other:#04x}")),
    };
    Ok(Some((value, after_line)))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|pair| pair == b"\r\n").map(|offset| from + offset)
}

/// The length of the first complete request in `buf`: a RESP array, or an inline command (`PING\r\n`).
fn request_len(buf: &[u8]) -> Result<Option<usize>, String> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => Ok(parse_resp(buf)?.map(|(_, len)| len)),
        Some(_) => Ok(buf.iter().position(|&b| b == b'\n').map(|newline| newline + 1)),
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

trait Duplex: Read + Write + Send {
    fn set_read_timeout_to(&self, timeout: Duration) -> io::Result<()>;
}

impl Duplex for UnixStream {
    fn set_read_timeout_to(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

impl Duplex for TcpStream {
    fn set_read_timeout_to(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

/// A plain RESP connection (no TLS) with bounded reads: for the helpers and for tests that must see exactly
/// what a server or the proxy does (a reply, or none within a read timeout).
pub struct RespConnection {
    stream: Box<dyn Duplex>,
    buffer: Vec<u8>,
}

impl RespConnection {
    pub fn unix(path: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(RespConnection { stream: Box::new(stream), buffer: Vec::new() })
    }

    pub fn tcp(addr: SocketAddr) -> io::Result<Self> {
        Self::tcp_with_read_timeout(addr, REPLY_TIMEOUT)
    }

    pub fn tcp_with_read_timeout(addr: SocketAddr, read_timeout: Duration) -> io::Result<Self> {
        assert_ne!(addr.port(), FORBIDDEN_PORT, "tests never talk to the default Redis port");
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(RespConnection { stream: Box::new(stream), buffer: Vec::new() })
    }

    /// How long [`Self::read_reply`] waits; a short one lets a test see that no reply comes.
    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout_to(timeout)
    }

    pub fn send(&mut self, args: &[&str]) -> io::Result<()> {
        self.stream.write_all(&encode_command(args))
    }

    /// The next reply; an error of kind WouldBlock/TimedOut when none came within the read timeout.
    pub fn read_reply(&mut self) -> io::Result<Resp> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match parse_resp(&self.buffer) {
                Ok(Some((value, len))) => {
                    self.buffer.drain(..len);
                    return Ok(value);
                }
                Ok(None) => {}
                Err(message) => return Err(io::Error::new(io::ErrorKind::InvalidData, message)),
            }
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a reply"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    pub fn call(&mut self, args: &[&str]) -> io::Result<Resp> {
        self.send(args)?;
        self.read_reply()
    }
}

/// True for the error a read timeout gives (the kind differs between platforms).
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------------------------------------------
// Proxy

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProxyMode {
    Pass,
    /// Requests reach the server; replies are swallowed (the next `Some(n)`, or all until switched back).
    DropReplies(Option<u64>),
    /// Connections are accepted and requests read, but nothing reaches the server and nothing is answered.
    NeverAnswer,
}

struct ProxyShared {
    upstream: SocketAddr,
    mode: Mutex<ProxyMode>,
    requests_forwarded: AtomicU64,
    requests_swallowed: AtomicU64,
    replies_forwarded: AtomicU64,
    replies_dropped: AtomicU64,
    connections_accepted: AtomicU64,
    stopping: AtomicBool,
    /// Every socket opened, so Drop and `disconnect_all` can end the threads blocked on them.
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A loopback TCP proxy (std threads) in front of a TCP server that can swallow replies after the server ran
/// the command: how tests make a reply "lost" and prove a retried script is not counted twice. Frames are
/// whole RESP values, so a client stays in step with the replies it does get. Modes switch at run time and
/// apply to every connection.
pub struct ReplyDroppingProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl ReplyDroppingProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        assert_ne!(upstream.port(), FORBIDDEN_PORT, "never proxy the default Redis port");
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(ProxyShared {
            upstream,
            mode: Mutex::new(ProxyMode::Pass),
            requests_forwarded: AtomicU64::new(0),
            requests_swallowed: AtomicU64::new(0),
            replies_forwarded: AtomicU64::new(0),
            replies_dropped: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("start the proxy thread");
        ReplyDroppingProxy { addr, shared, accept_thread: Some(accept_thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Forward everything both ways.
    pub fn pass(&self) {
        *self.shared.mode() = ProxyMode::Pass;
    }

    /// Forward requests, swallow the next `count` replies (any connection), then pass again.
    pub fn drop_next_replies(&self, count: u64) {
        *self.shared.mode() = if count == 0 { ProxyMode::Pass } else { ProxyMode::DropReplies(Some(count)) };
    }

    /// Forward requests, swallow every reply until [`Self::pass`].
    pub fn drop_replies(&self) {
        *self.shared.mode() = ProxyMode::DropReplies(None);
    }

    /// Accept and read, never forward, never answer (a hung server) until [`Self::pass`].
    pub fn never_answer(&self) {
        *self.shared.mode() = ProxyMode::NeverAnswer;
    }

    /// Replies still to be swallowed in `drop_next_replies` mode (0 in any other).
    pub fn replies_left_to_drop(&self) -> u64 {
        match *self.shared.mode() {
            ProxyMode::DropReplies(Some(left)) => left,
            _ => 0,
        }
    }

    /// Requests (commands) written to the server.
    pub fn requests_forwarded(&self) -> u64 {
        self.shared.requests_forwarded.load(Ordering::SeqCst)
    }

    /// Requests read in `never_answer` mode and not forwarded.
    pub fn requests_swallowed(&self) -> u64 {
        self.shared.requests_swallowed.load(Ordering::SeqCst)
    }

    pub fn replies_forwarded(&self) -> u64 {
        self.shared.replies_forwarded.load(Ordering::SeqCst)
    }

    pub fn replies_dropped(&self) -> u64 {
        self.shared.replies_dropped.load(Ordering::SeqCst)
    }

    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections_accepted.load(Ordering::SeqCst)
    }

    /// Closes every open connection (clients see the connection reset); new ones are accepted as before.
    pub fn disconnect_all(&self) {
        self.shared.close_sockets();
    }
}

impl Drop for ReplyDroppingProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the blocking accept
        if let Some(accept) = self.accept_thread.take() {
            let _ = accept.join();
        }
        // Connection threads may start reply threads while we join; repeat until none is left.
        loop {
            self.shared.close_sockets();
            let threads = std::mem::take(&mut *lock(&self.shared.threads));
            if threads.is_empty() {
                break;
            }
            for handle in threads {
                let _ = handle.join();
            }
        }
    }
}

impl ProxyShared {
    fn mode(&self) -> MutexGuard<'_, ProxyMode> {
        lock(&self.mode)
    }

    fn close_sockets(&self) {
        for socket in lock(&self.sockets).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn register(&self, socket: &TcpStream) {
        if let Ok(clone) = socket.try_clone() {
            lock(&self.sockets).push(clone);
        }
    }

    fn spawn(self: &Arc<Self>, name: &str, work: impl FnOnce(Arc<ProxyShared>) + Send + 'static) {
        let shared = Arc::clone(self);
        let handle = thread::Builder::new().name(name.into()).spawn(move || work(shared)).expect("proxy thread");
        lock(&self.threads).push(handle);
    }

    /// Whether this reply goes to the client; counts it and steps the drop budget.
    fn forward_reply(&self) -> bool {
        let mut mode = self.mode();
        let forward = match *mode {
            ProxyMode::Pass => true,
            ProxyMode::NeverAnswer | ProxyMode::DropReplies(None) => false,
            ProxyMode::DropReplies(Some(left)) => {
                *mode = if left <= 1 { ProxyMode::Pass } else { ProxyMode::DropReplies(Some(left - 1)) };
                false
            }
        };
        let counter = if forward { &self.replies_forwarded } else { &self.replies_dropped };
        counter.fetch_add(1, Ordering::SeqCst);
        forward
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking proxy thread must not hide the test's own failure behind a poisoned lock.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = incoming else { continue };
        let _ = client.set_nodelay(true);
        shared.connections_accepted.fetch_add(1, Ordering::SeqCst);
        shared.register(&client);
        shared.spawn("proxy-requests", move |shared| pump_requests(client, shared));
    }
}

/// Client → server: whole requests, forwarded or (never-answer mode) swallowed. The server connection is
/// opened at the first forwarded request, with a thread for its replies.
fn pump_requests(mut client: TcpStream, shared: Arc<ProxyShared>) {
    let mut upstream: Option<TcpStream> = None;
    let mut pending = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'connection: loop {
        let read = match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&chunk[..read]);
        while let Ok(Some(len)) = request_len(&pending) {
            let request: Vec<u8> = pending.drain(..len).collect();
            if *shared.mode() == ProxyMode::NeverAnswer {
                shared.requests_swallowed.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if upstream.is_none() {
                match connect_upstream(&client, &shared) {
                    Some(server) => upstream = Some(server),
                    None => break 'connection,
                }
            }
            let server = upstream.as_mut().expect("connected above");
            // Counted before the write: the reply (and a test reading the count after it) cannot come first.
            shared.requests_forwarded.fetch_add(1, Ordering::SeqCst);
            if server.write_all(&request).is_err() {
                shared.requests_forwarded.fetch_sub(1, Ordering::SeqCst);
                break 'connection;
            }
        }
    }
    // The client is gone (or the server is): end both directions so the reply thread ends too.
    if let Some(server) = upstream {
        let _ = server.shutdown(Shutdown::Both);
    }
    let _ = client.shutdown(Shutdown::Both);
}

fn connect_upstream(client: &TcpStream, shared: &Arc<ProxyShared>) -> Option<TcpStream> {
    if shared.stopping.load(Ordering::SeqCst) {
        return None;
    }
    let server = TcpStream::connect_timeout(&shared.upstream, REPLY_TIMEOUT).ok()?;
    let _ = server.set_nodelay(true);
    shared.register(&server);
    let replies_from = server.try_clone().ok()?;
    let replies_to = client.try_clone().ok()?;
    shared.spawn("proxy-replies", move |shared| pump_replies(replies_from, replies_to, shared));
    Some(server)
}

/// Server → client: whole replies, each forwarded or swallowed as the mode says; pushes always pass.
fn pump_replies(mut server: TcpStream, mut client: TcpStream, shared: Arc<ProxyShared>) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'connection: loop {
        let read = match server.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&chunk[..read]);
        while let Ok(Some((reply, len))) = parse_resp(&pending) {
            let frame: Vec<u8> = pending.drain(..len).collect();
            let forward = matches!(reply, Resp::Push(_)) || shared.forward_reply();
            if forward && client.write_all(&frame).is_err() {
                break 'connection;
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}
