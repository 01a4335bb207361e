//! Talking to the store within a deadline: a small pool of connections made lazily, closed in a forked child (it
//! must never share a socket with its parent), the breaker (`super::breaker`), the store's figures, and the engine's
//! calls (in the form the server takes: see `super::scripts`).
//!
//! A connection error drops the whole idle pool (a server that closed one idle connection, by its `timeout` or a
//! proxy's, has closed its siblings too) and the operation is made once more on a fresh connection within the same
//! deadline. Idle connections are checked by use, not before it: one the server closed already holds its FIN, so its
//! first read fails at once (no round trip, no timer); a check before every use (PING) would cost a round trip on
//! every call, a recycling age would reconnect (and authenticate again) healthy connections.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::{ConnectionLike, ErrorKind, RedisError, ServerErrorKind, Value};

use super::RedisOptions;
use super::breaker::{Breaker, FAILURES_TO_OPEN};
use super::scripts::{ENGINE, Form, Op, functions_unavailable};
use crate::pacing::PacingError;
use crate::pacing::stats::{STORE_FAILURE_KIND_SLOTS, StoreStats};
use crate::vocab::StoreFailureKind;

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
    /// Not reachable within the deadline: the failure policy decides. The operation may have reached the store.
    Unavailable(String),
    /// The breaker is open: the operation was not sent; the failure policy decides.
    Skipped(String),
    /// It answered with an error that waiting will not fix (another clock, a script error).
    Refused(String),
    /// It did not accept the URL's credentials (WRONGPASS, NOAUTH).
    Auth(String),
    /// Its ACL does not allow a command the engine needs (NOPERM, an unknown or renamed command).
    Forbidden(String),
    /// It holds other limits for the prefix than the limiter's (found by a limiter created while it was down).
    LimitsDiffer(String),
}

impl StoreFailure {
    /// The store cannot decide now, and may later: the failure policy decides meanwhile.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreFailure::Unavailable(_) | StoreFailure::Skipped(_))
    }
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
    /// Bumped when the idle connections are dropped: one checked out before comes back to be dropped too.
    generation: u64,
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
    pool: Mutex<Pool>,
    breaker: Breaker,
    /// Set when a call succeeds after one or more failed, until `recovered` reports it once.
    recovered: AtomicBool,
    /// Operations sent (each attempt).
    operations: AtomicU64,
    /// Failed operations by [`StoreFailureKind`] code.
    failures: [AtomicU64; STORE_FAILURE_KIND_SLOTS],
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
            pool: Mutex::new(Pool { pid: std::process::id(), generation: 0, idle: Vec::new() }),
            breaker: Breaker::new(options.breaker_cooldown, options.deadline),
            recovered: AtomicBool::new(false),
            operations: AtomicU64::new(0),
            failures: Default::default(),
            functions: AtomicBool::new(false),
        })
    }

    /// How long the breaker keeps callers from the store (zero when closed).
    pub fn cooldown_left(&self) -> Duration {
        self.breaker.wait(Instant::now())
    }

    /// True once after the first success that follows one or more failures.
    pub fn recovered(&self) -> bool {
        // A load first: the common case (nothing to report) writes nothing to the shared line.
        self.recovered.load(Ordering::Relaxed) && self.recovered.swap(false, Ordering::Relaxed)
    }

    /// The store's figures; `replays_pending` is the backend's.
    pub fn stats(&self, replays_pending: u64) -> StoreStats {
        StoreStats {
            shared: true,
            operations: self.operations.load(Ordering::Relaxed),
            failures: std::array::from_fn(|i| self.failures[i].load(Ordering::Relaxed)),
            breaker_openings: self.breaker.openings(),
            breaker_open: self.breaker.is_open(),
            replays_pending,
        }
    }

    /// The store answered (a reply, or a refusal such as a wrong password): the breaker closes, and the first answer
    /// after failures is reported once by [`Store::recovered`].
    fn heard_from_the_store(&self) {
        if self.breaker.succeeded() {
            self.recovered.store(true, Ordering::Relaxed);
        }
    }

    fn count_failure(&self, kind: StoreFailureKind) {
        self.failures[kind.code() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets every pooled connection after a reply that did not belong to its request (a protocol failure).
    pub fn discard_connections(&self) {
        self.count_failure(StoreFailureKind::Protocol);
        self.drop_idle();
    }

    /// Drops the idle connections (closing their sockets); those checked out now are dropped when they come back.
    fn drop_idle(&self) {
        let mut pool = self.pool.lock();
        pool.idle.clear();
        pool.generation += 1;
    }

    /// A pooled connection, or a new one: with the pool's generation it belongs to.
    fn checkout(&self, deadline: Instant) -> Result<(Connection, u64), StoreFailure> {
        let generation = {
            let mut pool = self.pool.lock();
            let pid = std::process::id();
            if pool.pid != pid {
                // Inherited from the parent: using them would mix replies. Dropping one closes its descriptor and
                // writes nothing (redis-rs sends no QUIT, rustls no close_notify on drop), so the parent's socket
                // stays open and untouched.
                pool.idle.clear();
                pool.generation += 1;
                pool.pid = pid;
            }
            if let Some(c) = pool.idle.pop() {
                return Ok((c, pool.generation));
            }
            pool.generation
        };
        let left = remaining(deadline).inspect_err(|_| self.count_failure(StoreFailureKind::Timeout))?;
        let left = left / (1 + self.setup_replies);
        let connection = match &self.client {
            Client::Single(c) => c.get_connection_with_timeout(left).map(|c| Connection::Single(Box::new(c))),
            Client::Cluster(c) => c.get_connection().map(|c| Connection::Cluster(Box::new(c))),
        };
        connection.map(|c| (c, generation)).map_err(|e| self.classify(e))
    }

    fn checkin(&self, connection: Connection, generation: u64) {
        let mut pool = self.pool.lock();
        if pool.pid == std::process::id() && pool.generation == generation && pool.idle.len() < POOL_SIZE {
            pool.idle.push(connection);
        }
    }

    /// What an error means, counted by kind.
    fn classify(&self, e: RedisError) -> StoreFailure {
        let (kind, failure) = if authentication(&e) {
            (StoreFailureKind::Refused, StoreFailure::Auth(error_text(&e)))
        } else if forbidden(&e) {
            (StoreFailureKind::Refused, StoreFailure::Forbidden(error_text(&e)))
        } else if refused(&e) {
            (StoreFailureKind::Refused, StoreFailure::Refused(error_text(&e)))
        } else if e.is_timeout() {
            (StoreFailureKind::Timeout, StoreFailure::Unavailable(e.to_string()))
        } else {
            (StoreFailureKind::Connection, StoreFailure::Unavailable(e.to_string()))
        };
        self.count_failure(kind);
        failure
    }

    /// Runs `attempt` on a connection within the deadline: a connection that failed is dropped with the idle pool
    /// and the attempt is made once more on a fresh one (mutations carry operation ids, so a script that ran before
    /// its reply was lost is answered from its stored result, not run twice). The first attempt gets half the
    /// deadline, so a lost reply still leaves time for the retry. The breaker hears of the outcome.
    fn with_connection(
        &self,
        mut attempt: impl FnMut(&mut dyn ConnectionLike, bool) -> redis::RedisResult<Value>,
    ) -> Result<Value, StoreFailure> {
        let now = Instant::now();
        if let Err(wait) = self.breaker.admit(now) {
            return Err(StoreFailure::Skipped(format!(
                "the store failed {FAILURES_TO_OPEN} times in a row; the breaker asks it again in {} ms",
                wait.as_millis().max(1)
            )));
        }
        let deadline = now + self.deadline;
        let mut last = None;
        for retry in [false, true] {
            let (mut connection, generation) = match self.checkout(deadline) {
                Ok(c) => c,
                Err(e) if e.is_outage() => {
                    last = Some(e);
                    break;
                }
                Err(answered) => {
                    // The store is up and refused (credentials): no outage for the breaker.
                    self.heard_from_the_store();
                    return Err(answered);
                }
            };
            self.operations.fetch_add(1, Ordering::Relaxed);
            let budget =
                if retry { remaining(deadline) } else { remaining(deadline).map(|left| left.min(self.deadline / 2)) };
            let outcome = match budget {
                Ok(left) => connection
                    .set_timeouts(left.max(Duration::from_millis(1)))
                    .and_then(|()| attempt(connection.like(), retry))
                    .map_err(|e| self.classify(e)),
                Err(e) => {
                    self.count_failure(StoreFailureKind::Timeout);
                    Err(e)
                }
            };
            match outcome {
                Err(e) if e.is_outage() => {
                    // This connection is dropped (its state is unknown), and its idle siblings with it.
                    drop(connection);
                    self.drop_idle();
                    last = Some(e);
                }
                answered => {
                    self.checkin(connection, generation);
                    self.heard_from_the_store();
                    return answered;
                }
            }
            if remaining(deadline).is_err() {
                break;
            }
        }
        self.breaker.failed(Instant::now());
        Err(last.unwrap_or_else(|| StoreFailure::Unavailable("no time left".into())))
    }

    /// Loads the engine as a Functions library when `prefer_functions` and the server takes it (Redis 7+, an ACL
    /// allowing `function|load`); otherwise operations are sent as scripts (EVALSHA).
    pub fn choose_form(&self, prefer_functions: bool) -> Result<Form, StoreFailure> {
        let functions = prefer_functions
            && match self.with_connection(|c, _| ENGINE.load(c)) {
                Ok(_) => true,
                Err(StoreFailure::Forbidden(_)) => false,
                Err(StoreFailure::Refused(why)) if why.contains("unknown") => false,
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

/// The credentials were not accepted: at connect (AUTH answered WRONGPASS), or a command needs them (NOAUTH; a
/// large request from a client that did not authenticate gets "Protocol error: unauthenticated bulk length").
fn authentication(e: &RedisError) -> bool {
    e.kind() == ErrorKind::AuthenticationFailed
        || e.code().is_some_and(|c| c == "NOAUTH" || c == "WRONGPASS")
        || e.to_string().contains("unauthenticated")
}

/// The ACL (or a renamed command) does not let the engine run: NOPERM, an unknown command, a script's command
/// the user may not run.
fn forbidden(e: &RedisError) -> bool {
    let text = e.to_string();
    e.code() == Some("NOPERM")
        || text.contains("NOPERM")
        || text.contains("unknown command")
        || text.contains("can't run this command")
}

fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}
