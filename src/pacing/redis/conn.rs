//! Talking to the store within a deadline: a small pool of connections made lazily and dropped after any error,
//! discarded in a forked child (it must never share a socket with its parent), a breaker that stops asking for a
//! cooldown after a failure, and the engine's calls (in the form the server takes: see `super::scripts`).

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::{ConnectionLike, ErrorKind, RedisError, ServerErrorKind, Value};

use super::RedisOptions;
use super::scripts::{ENGINE, Form, Op, functions_unavailable};
use crate::pacing::PacingError;

/// A fresh operation id: random, non-zero, below 2^53 (a Lua number holds it exactly; the top bit of a u64 marks
/// local-share permits).
pub fn op_id() -> u64 {
    static SEED: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = SEED.hash_one((std::process::id(), n, Instant::now())) >> 11;
    id.max(1)
}

/// Why the store did not answer an operation.
#[derive(Debug)]
pub enum StoreFailure {
    /// Not reachable within the deadline (or the breaker is open): the failure policy decides.
    Unavailable(String),
    /// It answered with an error that waiting will not fix (permissions, another clock, a script error).
    Refused(String),
}

enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

enum Connection {
    Single(Box<redis::Connection>),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Connection {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Connection::Single(c) => c.as_mut(),
            Connection::Cluster(c) => c.as_mut(),
        }
    }

    fn set_timeouts(&self, t: Duration) -> redis::RedisResult<()> {
        match self {
            Connection::Single(c) => {
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))
            }
            Connection::Cluster(c) => {
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))
            }
        }
    }
}

struct Pool {
    /// The process the connections were made in: a forked child never uses its parent's sockets.
    pid: u32,
    idle: Vec<Connection>,
}

/// The connections a pool keeps idle: concurrent callers beyond it connect and then drop theirs.
const POOL_SIZE: usize = 4;

pub struct Store {
    client: Client,
    /// Replies a new connection waits for before it is ready (AUTH, SELECT): each read gets its own timeout, so
    /// the connect deadline is shared between them.
    setup_replies: u32,
    deadline: Duration,
    cooldown: Duration,
    pool: Mutex<Pool>,
    /// Until when the breaker is open (no calls to the store), if it is.
    open_until: Mutex<Option<Instant>>,
    /// Set when a call succeeds after the breaker had opened, until `recovered` reports it once.
    recovered: Mutex<bool>,
    /// The engine is a Functions library on this server (else scripts: see [`Store::choose_form`]).
    functions: AtomicBool,
}

/// A URL's connection settings, without the CLIENT SETINFO round trips a new connection would otherwise make
/// (each a chance to wait a whole timeout on a hung server); counts the setup replies it still needs.
fn connection_info(url: &str, setup_replies: &mut u32) -> Result<redis::ConnectionInfo, PacingError> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info().map_err(client_error)?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    *setup_replies = (*setup_replies).max(u32::from(settings.password().is_some()) + u32::from(settings.db() != 0));
    Ok(info.set_redis_settings(settings))
}

fn client_error(e: RedisError) -> PacingError {
    PacingError::InvalidOptions(format!("the store URL or TLS settings are not usable: {e}"))
}

impl Store {
    pub fn open(options: &RedisOptions) -> Result<Self, PacingError> {
        let certs = match &options.tls_ca_file {
            None => None,
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(
                    std::fs::read(path)
                        .map_err(|e| PacingError::InvalidOptions(format!("cannot read the TLS CA file {path}: {e}")))?,
                ),
            }),
        };
        let url = options.url.trim();
        let mut setup_replies = 0;
        let client = if let Some((scheme, nodes)) = url.split_once("+cluster://") {
            let nodes: Vec<redis::ConnectionInfo> = nodes
                .split(',')
                .map(|node| connection_info(&format!("{scheme}://{node}"), &mut setup_replies))
                .collect::<Result<_, _>>()?;
            let mut builder = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(options.deadline)
                .response_timeout(options.deadline)
                .retries(0);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            Client::Cluster(builder.build().map_err(client_error)?)
        } else {
            let info = connection_info(url, &mut setup_replies)?;
            let client = match certs {
                None => redis::Client::open(info),
                Some(certs) => redis::Client::build_with_tls(info, certs),
            };
            Client::Single(client.map_err(client_error)?)
        };
        Ok(Store {
            client,
            setup_replies,
            deadline: options.deadline,
            cooldown: options.breaker_cooldown,
            pool: Mutex::new(Pool { pid: std::process::id(), idle: Vec::new() }),
            open_until: Mutex::new(None),
            recovered: Mutex::new(false),
            functions: AtomicBool::new(false),
        })
    }

    /// How long the breaker stays open (zero when closed).
    pub fn cooldown_left(&self) -> Duration {
        self.open_until.lock().map_or(Duration::ZERO, |until| until.saturating_duration_since(Instant::now()))
    }

    /// True once after the first success that follows an outage.
    pub fn recovered(&self) -> bool {
        std::mem::take(&mut *self.recovered.lock())
    }

    /// Forgets every pooled connection (after a reply that did not belong to its request).
    pub fn discard_connections(&self) {
        self.pool.lock().idle.clear();
    }

    fn checkout(&self, deadline: Instant) -> Result<Connection, StoreFailure> {
        {
            let mut pool = self.pool.lock();
            let pid = std::process::id();
            if pool.pid != pid {
                // Inherited from the parent: closing them here is harmless to it, but using them would mix replies.
                for inherited in pool.idle.drain(..) {
                    std::mem::forget(inherited);
                }
                pool.pid = pid;
            }
            if let Some(c) = pool.idle.pop() {
                return Ok(c);
            }
        }
        let left = remaining(deadline)? / (1 + self.setup_replies);
        let connection = match &self.client {
            Client::Single(c) => c.get_connection_with_timeout(left).map(|c| Connection::Single(Box::new(c))),
            Client::Cluster(c) => c.get_connection().map(|c| Connection::Cluster(Box::new(c))),
        };
        connection.map_err(unavailable)
    }

    fn checkin(&self, connection: Connection) {
        let mut pool = self.pool.lock();
        if pool.pid == std::process::id() && pool.idle.len() < POOL_SIZE {
            pool.idle.push(connection);
        }
    }

    /// Runs `attempt` on a connection within the deadline: a connection that failed is dropped and the attempt is
    /// made once more on a fresh one (mutations carry operation ids, so a script that ran before its reply was lost
    /// is answered from its stored result, not run twice). The first attempt gets half the deadline, so a lost
    /// reply still leaves time for the retry.
    fn with_connection(
        &self,
        mut attempt: impl FnMut(&mut dyn ConnectionLike, bool) -> redis::RedisResult<Value>,
    ) -> Result<Value, StoreFailure> {
        if !self.cooldown_left().is_zero() {
            return Err(StoreFailure::Unavailable("the store failed recently; waiting for the breaker".into()));
        }
        let deadline = Instant::now() + self.deadline;
        let mut last = None;
        for retry in [false, true] {
            let mut connection = match self.checkout(deadline) {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            };
            let budget =
                if retry { remaining(deadline) } else { remaining(deadline).map(|left| left.min(self.deadline / 2)) };
            let outcome = match budget {
                Ok(left) => {
                    connection.set_timeouts(left.max(Duration::from_millis(1))).map_err(unavailable).and_then(|()| {
                        attempt(connection.like(), retry)
                            .map_err(|e| if refused(&e) { refusal(e) } else { unavailable(e) })
                    })
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(value) => {
                    self.checkin(connection);
                    let mut open = self.open_until.lock();
                    if open.take().is_some() {
                        *self.recovered.lock() = true;
                    }
                    return Ok(value);
                }
                Err(StoreFailure::Refused(why)) => {
                    self.checkin(connection);
                    return Err(StoreFailure::Refused(why));
                }
                Err(e) => last = Some(e), // the connection is dropped: its state is unknown
            }
            if remaining(deadline).is_err() {
                break;
            }
        }
        *self.open_until.lock() = Some(Instant::now() + self.cooldown);
        Err(last.unwrap_or_else(|| StoreFailure::Unavailable("no time left".into())))
    }

    /// Loads the engine as a Functions library when `prefer_functions` and the server takes it (Redis 7+, an ACL
    /// allowing `function|load`); otherwise operations are sent as scripts (EVALSHA).
    pub fn choose_form(&self, prefer_functions: bool) -> Result<Form, StoreFailure> {
        let functions = prefer_functions
            && match self.with_connection(|c, _| ENGINE.load(c)) {
                Ok(_) => true,
                Err(StoreFailure::Refused(why)) if why.starts_with("NOPERM") || why.contains("unknown") => false,
                Err(other) => return Err(other),
            };
        self.functions.store(functions, Ordering::Relaxed);
        Ok(self.form())
    }

    pub fn form(&self) -> Form {
        if self.functions.load(Ordering::Relaxed) { Form::Functions } else { Form::Scripts }
    }

    /// Runs an operation of the engine. On a retry the operation id (the first argument, echoed back first in the
    /// reply) is sent as `r:<id>`: a refused acquire then looks for a permit its first attempt may have taken.
    pub fn call(&self, op: Op, keys: &[String], args: &[String]) -> Result<Value, StoreFailure> {
        self.with_connection(|c, retry| {
            let retried;
            let args = match args.split_first() {
                Some((id, rest)) if retry && !id.is_empty() => {
                    retried = [vec![format!("r:{id}")], rest.to_vec()].concat();
                    retried.as_slice()
                }
                _ => args,
            };
            match ENGINE.run(self.form(), c, op, keys, args) {
                // The server no longer has Functions (a failover to an older one): scripts from now on.
                Err(e) if self.form() == Form::Functions && functions_unavailable(&e) => {
                    self.functions.store(false, Ordering::Relaxed);
                    ENGINE.run(Form::Scripts, c, op, keys, args)
                }
                reply => reply,
            }
        })
    }

    /// Runs one plain command (idempotent ones only: it may run twice when a reply is lost).
    pub fn command(&self, cmd: &redis::Cmd) -> Result<Value, StoreFailure> {
        self.with_connection(|c, _| cmd.query(c))
    }
}

fn remaining(deadline: Instant) -> Result<Duration, StoreFailure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        return Err(StoreFailure::Unavailable("the deadline passed".into()));
    }
    Ok(left)
}

/// Errors the store gives that waiting will not fix.
fn refused(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(kind) => {
            matches!(kind, ServerErrorKind::ResponseError | ServerErrorKind::NoScript | ServerErrorKind::CrossSlot)
                || e.code().is_some_and(|c| c == "NOPERM" || c == "WRONGTYPE")
        }
        ErrorKind::Extension => e.code().is_none_or(|c| c != "OOM"),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig | ErrorKind::UnexpectedReturnType => true,
        _ => false,
    }
}

fn refusal(e: RedisError) -> StoreFailure {
    let text = match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    };
    StoreFailure::Refused(text)
}

fn unavailable(e: RedisError) -> StoreFailure {
    StoreFailure::Unavailable(e.to_string())
}
