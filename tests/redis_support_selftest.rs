//! The Redis test support (`tests/support/redis.rs`) against real servers: every piece the Redis backend's tests
//! stand on is exercised here, so a broken helper fails here first and not as a puzzling backend failure.

#[path = "support/redis.rs"]
mod redis_support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redis_support::{
    FORBIDDEN_PORT, REPLY_TIMEOUT, RedisCluster, RedisServer, ReplyDroppingProxy, Resp, RespConnection, is_timeout,
    parse_resp,
};

/// Long enough that a reply which was going to come has come; the assertions built on it only ever see a reply
/// arrive (a slow machine cannot make them fail wrongly).
const NO_REPLY_WITHIN: Duration = Duration::from_millis(300);

/// Alive: in /proc and not a zombie (a reaped pid leaves /proc; an orphan may linger as a zombie of init).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

/// Polls a condition the test cannot otherwise wait on (a proxy thread's counter); bounded, never timed.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn pong() -> Resp {
    Resp::Simple("PONG".into())
}

#[test]
fn default_server_listens_on_a_unix_socket_only_and_is_gone_after_drop() {
    let server = RedisServer::start();
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert!(server.socket_path().starts_with(server.dir()));
    assert_eq!(server.url(), format!("redis+unix://{}", server.socket_path().display()));
    assert!(server.url().starts_with("redis+unix:///"), "{}", server.url());
    assert_eq!(server.port(), None);
    assert_eq!(server.cli(&["CONFIG", "GET", "port"]), "port\n0", "no TCP listener");
    assert_eq!(server.cli(&["CONFIG", "GET", "save"]), "save\n", "no snapshots");
    assert_eq!(server.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nno");
    assert_eq!(server.cli(&["CONFIG", "GET", "unixsocketperm"]), "unixsocketperm\n700");
    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    assert!(process_alive(pid));
    drop(server);
    assert!(!process_alive(pid), "pid {pid} still runs after drop");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn tcp_server_answers_on_a_free_loopback_port() {
    let server = RedisServer::start_tcp();
    let port = server.port().expect("a TCP port");
    assert_ne!(port, FORBIDDEN_PORT);
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(server.cli(&["CONFIG", "GET", "port"]), format!("port\n{port}"));
    assert_eq!(server.cli(&["CONFIG", "GET", "bind"]), "bind\n127.0.0.1");
    // A raw socket, inline command: no client library in between.
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    raw.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
    assert_eq!(server.cli_network(&["PING"]), "PONG");
    assert_eq!(RespConnection::tcp(server.addr()).unwrap().call(&["ECHO", "hi"]).unwrap(), Resp::Bulk(b"hi".to_vec()));
}

#[test]
fn kill_ends_the_process_at_once() {
    let mut server = RedisServer::start_tcp();
    let pid = server.pid();
    server.cli(&["SET", "k", "v"]);
    server.kill();
    assert!(!server.is_running());
    assert!(!process_alive(pid));
    assert!(TcpStream::connect(server.addr()).is_err(), "TCP port still accepts");
    assert!(UnixStream::connect(server.socket_path()).is_err(), "socket still accepts");
}

#[test]
fn paused_server_accepts_but_never_answers_until_resumed() {
    let mut server = RedisServer::start_tcp();
    server.pause();
    // The kernel completes the handshake; the stopped process never reads.
    let mut connection = RespConnection::tcp_with_read_timeout(server.addr(), NO_REPLY_WITHIN).unwrap();
    connection.send(&["SET", "sent-while-paused", "1"]).unwrap();
    let error = connection.read_reply().unwrap_err();
    assert!(is_timeout(&error), "expected no reply, got {error}");
    server.resume();
    // The request sent during the pause is served after it.
    connection.set_read_timeout(REPLY_TIMEOUT).unwrap();
    assert_eq!(connection.read_reply().unwrap(), Resp::Simple("OK".into()));
    assert_eq!(server.cli(&["GET", "sent-while-paused"]), "1");

    // Dropping a paused server still kills it.
    server.pause();
    let pid = server.pid();
    drop(server);
    assert!(!process_alive(pid), "paused pid {pid} survived drop");
}

#[test]
fn restart_keeps_port_and_dir_and_without_aof_starts_empty() {
    let mut server = RedisServer::start_tcp();
    let (port, old_pid, dir) = (server.port(), server.pid(), server.dir().to_path_buf());
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.dir(), dir);
    assert_ne!(server.pid(), old_pid);
    assert!(!process_alive(old_pid));
    assert_eq!(server.command(&["GET", "k"]), Resp::Nil, "nothing persisted");
    assert_eq!(RespConnection::tcp(server.addr()).unwrap().call(&["PING"]).unwrap(), pong());

    // Killed first, restarted later: the same.
    server.kill();
    server.restart();
    assert_eq!(server.cli_network(&["PING"]), "PONG");
}

#[test]
fn aof_data_survives_a_restart() {
    let mut server = RedisServer::builder().tcp().aof().start();
    assert_eq!(server.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nyes");
    assert_eq!(server.cli(&["CONFIG", "GET", "appendfsync"]), "appendfsync\neverysec");
    server.cli(&["SET", "kept", "v"]);
    for _ in 0..3 {
        server.cli(&["INCR", "counter"]);
    }
    server.cli(&["SET", "expiring", "v", "EX", "1000"]);
    server.restart(); // SIGKILL: a crash, not a clean shutdown
    assert_eq!(server.cli(&["GET", "kept"]), "v");
    assert_eq!(server.cli(&["GET", "counter"]), "3");
    assert_eq!(server.keys_without_ttl("*"), ["counter", "kept"], "the TTL came back too");
}

#[test]
fn extra_config_arguments_reach_the_server() {
    let server = RedisServer::builder()
        .config("maxmemory-policy", "allkeys-lru")
        .config("maxmemory", "64mb")
        .config("client-output-buffer-limit", "pubsub 1mb 1mb 0")
        .start();
    assert_eq!(server.cli(&["CONFIG", "GET", "maxmemory-policy"]), "maxmemory-policy\nallkeys-lru");
    assert_eq!(server.cli(&["CONFIG", "GET", "maxmemory"]), format!("maxmemory\n{}", 64 * 1024 * 1024));
    assert!(server.cli(&["CONFIG", "GET", "client-output-buffer-limit"]).contains("pubsub 1048576 1048576 0"));
}

#[test]
fn keys_scans_and_keys_without_ttl_finds_only_keys_that_never_expire() {
    let server = RedisServer::start();
    // More keys than one SCAN batch, so the cursor loop is exercised.
    server.cli(&["EVAL", "for i = 1, 2500 do redis.call('SET', 'bulk:' .. i, 'v') end", "0"]);
    server.cli(&["SET", "xg:{app}:cfg", "limits"]);
    server.cli(&["SET", "xg:{app}:win:t1", "log", "EX", "100"]);
    server.cli(&["SET", "xg:{app}:win:t2", "log", "PX", "50000"]);
    server.cli(&["SET", "other", "v"]);
    assert_eq!(server.keys("xg:*"), ["xg:{app}:cfg", "xg:{app}:win:t1", "xg:{app}:win:t2"]);
    assert_eq!(server.keys_without_ttl("xg:*"), ["xg:{app}:cfg"]);
    assert_eq!(server.keys("bulk:*").len(), 2500);
    assert_eq!(server.keys_without_ttl("*").len(), 2500 + 2);
    assert!(server.keys("none:*").is_empty());
}

#[test]
fn acl_user_may_run_only_its_commands_on_its_keys() {
    let server = RedisServer::builder().tcp().acl_user("worker", "s3cret", &["~xg:*", "+ping", "+get", "+set"]).start();
    assert_eq!(server.cli_as("worker", &["PING"]), "PONG");
    assert_eq!(server.cli_as("worker", &["SET", "xg:a", "1"]), "OK");
    assert!(server.cli_as("worker", &["SET", "other", "1"]).starts_with("NOPERM"), "key outside ~xg:*");
    assert!(server.cli_as("worker", &["FLUSHALL"]).starts_with("NOPERM"), "command not granted");
    assert!(server.cli_as("worker", &["INCR", "xg:a"]).starts_with("NOPERM"), "command not granted");
    assert_eq!(server.cli(&["EXISTS", "other"]), "0", "the refused command did not run");
    assert_eq!(server.cli(&["GET", "xg:a"]), "1");

    let port = server.port().unwrap();
    let url = server.url_for_user("worker");
    assert_eq!(url, format!("redis://worker:s3cret@127.0.0.1:{port}"));
    // The URL itself logs in (redis-cli parses the same URL form).
    let output = Command::new("redis-cli").args(["-u", &url, "--no-auth-warning", "GET", "xg:a"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim_end(), "1");
    let mut connection = RespConnection::tcp(server.addr()).unwrap();
    assert!(connection.call(&["AUTH", "worker", "wrong"]).unwrap().text().starts_with("WRONGPASS"));

    let on_socket = RedisServer::builder().acl_user("worker", "s3cret", &["+ping"]).start();
    assert_eq!(
        on_socket.url_for_user("worker"),
        format!("redis+unix://{}?user=worker&pass=s3cret", on_socket.socket_path().display())
    );
    assert_eq!(on_socket.cli_as("worker", &["PING"]), "PONG");
}

#[test]
fn tls_server_completes_a_handshake_with_the_generated_ca_only() {
    let server = RedisServer::builder().tls().start();
    let port = server.port().expect("a TLS port");
    assert_ne!(port, FORBIDDEN_PORT);
    assert_eq!(server.url(), format!("rediss://127.0.0.1:{port}"));
    let ca = server.ca_cert_path().expect("a CA").to_path_buf();
    assert!(ca.starts_with(server.dir()), "generated at start, in the temp dir");
    assert!(server.ca_cert_pem().unwrap().starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_eq!(server.cli(&["CONFIG", "GET", "port"]), "port\n0", "no plaintext TCP listener");

    // redis-cli --tls --cacert <ca>: handshake, verification against the test CA, PING.
    assert_eq!(server.cli_network(&["PING"]), "PONG");
    assert!(server.network_cli_flags().contains(&"--tls".to_owned()));
    // Without the CA the same handshake fails verification: the test CA is what makes it work.
    let untrusted = Command::new("redis-cli")
        .args(["--tls", "-h", "127.0.0.1", "-p", &port.to_string(), "PING"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let untrusted_text = String::from_utf8_lossy(&[untrusted.stdout, untrusted.stderr].concat()).into_owned();
    assert!(!untrusted_text.contains("PONG") && untrusted_text.contains("verify"), "{untrusted_text}");
    // Plaintext to the TLS port gets no reply.
    let mut plain = RespConnection::tcp_with_read_timeout(server.addr(), NO_REPLY_WITHIN).unwrap();
    assert_ne!(plain.call(&["PING"]).ok(), Some(pong()));
    // Strict X.509 checks (what rustls/webpki demand too): v3 CA, SAN for 127.0.0.1 and localhost.
    let server_cert = server.dir().join("server.crt");
    let verify = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&ca)
        .arg(&server_cert)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let text = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&server_cert).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"), "{text}");
}

#[test]
fn cluster_of_three_primaries_is_ok_and_spreads_keys() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), RedisCluster::PRIMARIES);
    let ports: HashSet<u16> = cluster.nodes().iter().map(|node| node.addr().port()).collect();
    assert_eq!(ports.len(), 3);
    assert!(!ports.contains(&FORBIDDEN_PORT));
    for node in cluster.nodes() {
        let info = node.cli(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok") && info.contains("cluster_size:3"), "{info}");
    }
    let seeds = cluster.seed_urls();
    assert_eq!(seeds.len(), 3);
    assert!(seeds.iter().all(|url| url.starts_with("redis://127.0.0.1:")), "{seeds:?}");

    for i in 0..30 {
        assert_eq!(cluster.cli(&["SET", &format!("spread:{i}"), "v"]), "OK");
    }
    let holders: HashSet<usize> =
        (0..30).map(|i| cluster.node_holding(&format!("spread:{i}")).expect("key stored")).collect();
    assert_eq!(holders.len(), 3, "30 keys without a hash tag land on every node");

    // One hash tag, one slot, one node: what lets one script touch all of an app's keys.
    for i in 0..10 {
        cluster.cli(&["SET", &format!("xg:{{app}}:{i}"), "v"]);
    }
    let tagged: HashSet<usize> = (0..10).map(|i| cluster.node_holding(&format!("xg:{{app}}:{i}")).unwrap()).collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(cluster.cli(&["MSET", "xg:{app}:a", "1", "xg:{app}:b", "2"]), "OK");
    assert!(cluster.cli(&["MSET", "spread:0", "1", "spread:1", "2"]).starts_with("CROSSSLOT"));
    assert_eq!(cluster.keys("xg:*").len(), 12);
    assert_eq!(cluster.keys_without_ttl("spread:*").len(), 30);

    let pids: Vec<u32> = cluster.nodes().iter().map(RedisServer::pid).collect();
    drop(cluster);
    assert!(pids.iter().all(|&pid| !process_alive(pid)), "a node survived drop");
}

#[test]
fn proxy_passes_then_swallows_replies_of_commands_the_server_ran() {
    let server = RedisServer::start_tcp();
    let proxy = ReplyDroppingProxy::start(server.addr());
    assert_eq!(proxy.url(), format!("redis://{}", proxy.addr()));
    let mut client = RespConnection::tcp(proxy.addr()).unwrap();
    assert_eq!(client.call(&["PING"]).unwrap(), pong());
    assert_eq!((proxy.requests_forwarded(), proxy.replies_forwarded()), (1, 1));

    // The next reply is swallowed: the server counted, the client never hears.
    proxy.drop_next_replies(1);
    client.set_read_timeout(NO_REPLY_WITHIN).unwrap();
    client.send(&["INCR", "counter"]).unwrap();
    assert!(is_timeout(&client.read_reply().unwrap_err()));
    wait_until("the reply was dropped", || proxy.replies_dropped() == 1);
    assert_eq!(server.cli(&["GET", "counter"]), "1", "the server ran the command");
    assert_eq!(proxy.requests_forwarded(), 2);
    assert_eq!(proxy.replies_left_to_drop(), 0);

    // After N replies it passes again; whole replies were dropped, so the connection is still in step.
    client.set_read_timeout(REPLY_TIMEOUT).unwrap();
    assert_eq!(client.call(&["INCR", "counter"]).unwrap(), Resp::Integer(2));

    // Until switched back.
    proxy.drop_replies();
    client.set_read_timeout(NO_REPLY_WITHIN).unwrap();
    for _ in 0..2 {
        client.send(&["INCR", "counter"]).unwrap();
        assert!(is_timeout(&client.read_reply().unwrap_err()));
    }
    wait_until("both replies were dropped", || proxy.replies_dropped() == 3);
    proxy.pass();
    client.set_read_timeout(REPLY_TIMEOUT).unwrap();
    assert_eq!(client.call(&["GET", "counter"]).unwrap(), Resp::Bulk(b"4".to_vec()));
    assert_eq!(proxy.requests_forwarded(), 6);

    // Never answer: accepted, read, not forwarded.
    proxy.never_answer();
    let mut hung = RespConnection::tcp_with_read_timeout(proxy.addr(), NO_REPLY_WITHIN).unwrap();
    hung.send(&["INCR", "counter"]).unwrap();
    assert!(is_timeout(&hung.read_reply().unwrap_err()));
    wait_until("the request was swallowed", || proxy.requests_swallowed() == 1);
    assert_eq!(server.cli(&["GET", "counter"]), "4", "the server never saw it");
    assert_eq!(proxy.requests_forwarded(), 6);
    proxy.pass();
    hung.set_read_timeout(REPLY_TIMEOUT).unwrap();
    assert_eq!(hung.call(&["PING"]).unwrap(), pong());
    assert_eq!(proxy.connections_accepted(), 2);

    // Pipelined requests: each reply is counted and dropped whole.
    proxy.drop_next_replies(2);
    for _ in 0..3 {
        client.send(&["INCR", "counter"]).unwrap();
    }
    assert_eq!(client.read_reply().unwrap(), Resp::Integer(7), "the first two replies (5, 6) were dropped");
    assert_eq!(proxy.replies_dropped(), 5);

    // disconnect_all: the client sees its connection end.
    proxy.disconnect_all();
    assert!(client.call(&["PING"]).is_err());
    assert_eq!(RespConnection::tcp(proxy.addr()).unwrap().call(&["PING"]).unwrap(), pong());
}

#[test]
fn a_panicking_test_still_kills_its_server_and_removes_its_dir() {
    let (sender, receiver) = mpsc::channel();
    let outcome = thread::spawn(move || {
        let server = RedisServer::start();
        sender.send((server.pid(), server.dir().to_path_buf())).unwrap();
        panic!("a failing test (expected in this self-test)");
    })
    .join();
    assert!(outcome.is_err());
    let (pid, dir) = receiver.recv().unwrap();
    assert!(!process_alive(pid), "pid {pid} survived the panic");
    assert!(!dir.exists());
}

/// Runs only as the child of `servers_die_with_a_killed_test_process` (hence ignored): starts a server, reports
/// its pid and waits to be killed.
#[test]
#[ignore = "helper process for servers_die_with_a_killed_test_process"]
fn helper_start_a_server_and_wait_to_be_killed() {
    let server = RedisServer::start();
    println!("redis-pid={}", server.pid());
    println!("redis-dir={}", server.dir().display());
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest); // until the parent kills us
}

#[test]
fn servers_die_with_a_killed_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "helper_start_a_server_and_wait_to_be_killed", "--nocapture", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let redis_pid: u32 = lines
        .find_map(|line| line.ok()?.strip_prefix("redis-pid=")?.parse().ok())
        .expect("the helper reports its server's pid");
    let redis_dir: PathBuf = lines
        .find_map(|line| Some(PathBuf::from(line.ok()?.strip_prefix("redis-dir=")?)))
        .expect("the helper reports its server's dir");
    assert!(process_alive(redis_pid));
    child.kill().unwrap(); // SIGKILL: no Drop runs in the child
    child.wait().unwrap();
    wait_until("the orphaned redis-server died", || !process_alive(redis_pid));
    // A killed process removes nothing; only the dir is left, and it is ours to remove.
    assert!(redis_dir.file_name().unwrap().to_string_lossy().starts_with("xg-redis-"), "{}", redis_dir.display());
    std::fs::remove_dir_all(&redis_dir).unwrap();
}

#[test]
fn resp_frames_are_found_only_when_complete() {
    let frames: [(&[u8], Resp); 6] = [
        (b"+OK\r\n", Resp::Simple("OK".into())),
        (b"$-1\r\n", Resp::Nil),
        (b"$5\r\na\r\nbc\r\n", Resp::Bulk(b"a\r\nbc".to_vec())),
        (
            b"*3\r\n:1\r\n$2\r\nhi\r\n*1\r\n-ERR no\r\n",
            Resp::Array(vec![
                Resp::Integer(1),
                Resp::Bulk(b"hi".to_vec()),
                Resp::Array(vec![Resp::Error("ERR no".into())]),
            ]),
        ),
        // RESP3: an attribute before a map; a push.
        (
            b"|1\r\n+ttl\r\n:3\r\n%1\r\n+k\r\n#t\r\n",
            Resp::Array(vec![Resp::Simple("k".into()), Resp::Simple("t".into())]),
        ),
        (b">2\r\n+message\r\n_\r\n", Resp::Push(vec![Resp::Simple("message".into()), Resp::Nil])),
    ];
    for (bytes, expected) in frames {
        for cut in 0..bytes.len() {
            assert_eq!(parse_resp(&bytes[..cut]), Ok(None), "{:?} cut at {cut}", String::from_utf8_lossy(bytes));
        }
        let mut followed = bytes.to_vec();
        followed.extend_from_slice(b"+NEXT\r\n");
        assert_eq!(parse_resp(&followed), Ok(Some((expected, bytes.len()))));
    }
    assert!(parse_resp(b"?what\r\n").is_err());
}
