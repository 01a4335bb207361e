// Shared by the Node suite: the package under test (the built dist/), the repository's paths, a scripted loopback
// HTTP server, the local Xero-like server, real redis-server processes (unix sockets in temp dirs, stopped by pid,
// never port 6379) and the Python venv of the Python suite.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE = path.resolve(HERE, '..');
export const REPO = path.resolve(PACKAGE, '..', '..');
export const SHARED = process.env.XEROGUARD_SHARED || path.resolve(REPO, '..', 'shared');
export const require = createRequire(import.meta.url);

/** The package as `require('xeroguard')` gives it, from this checkout's build. */
export const xg = require(PACKAGE);
/** Its internal modules, for the tests that look inside. */
export const internal = (name) => require(path.join(PACKAGE, 'dist', 'cjs', `${name}.js`));

export function fail(message) {
  throw new Error(message);
}

/** Turns a hang into a failure: `promise`, or an error after `ms` (a bound for a loaded machine, not a timing). */
export function within(ms, promise, what = 'the operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// -----------------------------------------------------------------------------------------------------------------
// A scripted HTTP/1.1 server on loopback (as bindings/python/tests/loopback.py): it logs every request and answers each
// from a script, in order: a response, or a connection reset after the whole request was read. Once the script is
// used up it answers 200 with an empty invoice list. Every response closes its connection.

export const DEFAULT_BODY = JSON.stringify({ Invoices: [] });

export class LoopbackServer {
  constructor() {
    this.script = [];
    this.log = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('end', () => {
        this.log.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        const action = this.script.shift() ?? { status: 200 };
        if (action.reset) {
          req.socket.resetAndDestroy();
          return;
        }
        const finish = () => {
          const body = action.body ?? DEFAULT_BODY;
          const headers = { 'Content-Type': 'application/json', Connection: 'close', ...(action.headers ?? {}) };
          res.writeHead(action.status, headers);
          res.end(body);
        };
        if (action.before) Promise.resolve(action.before()).then(finish, (error) => res.destroy(error));
        else finish();
      });
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  respond(...actions) {
    this.script.push(...actions);
  }

  keys() {
    return this.log.map((entry) => entry.headers['idempotency-key'] ?? null);
  }

  async stop() {
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A port on loopback that refuses connections (bound, read, released). */
export async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// -----------------------------------------------------------------------------------------------------------------
// The local Xero-like server (tests/server/xero_like_server.py) in a child process.

function python() {
  return process.env.PYTHON || 'python3';
}

export class XeroServer {
  /** Xero's limits shrunk for tests: 5 calls per 1 s window per tenant, 2 in flight, 5 ms latency. */
  static startSmall(seed) {
    return XeroServer.start(['--minute-ms', '1000', '--minute-limit', '5', '--concurrency', '2', '--latency-ms', '5',
      '--seed', String(seed)]);
  }

  static async start(args = []) {
    const script = path.join(REPO, 'tests', 'server', 'xero_like_server.py');
    const child = spawn(python(), [script, '--port', '0', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    const line = await new Promise((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (chunk) => {
        text += chunk;
        if (text.includes('\n')) resolve(text.split('\n', 1)[0]);
      });
      child.on('exit', (code) => reject(new Error(`xero_like_server.py exited (${code}) before READY`)));
    });
    const [ready, port] = line.split(' ');
    if (ready !== 'READY') fail(`xero_like_server.py said ${line}`);
    const server = new XeroServer();
    server.child = child;
    server.url = `http://127.0.0.1:${port}`;
    return server;
  }

  async stats() {
    return (await fetch(`${this.url}/__stats`)).json();
  }

  async reset() {
    await fetch(`${this.url}/__control/reset`, { method: 'POST' });
  }

  async stop() {
    this.child.stdin.end(); // it stops when its stdin closes
    await new Promise((resolve) => (this.child.exitCode !== null ? resolve() : this.child.on('exit', resolve)));
  }
}

// -----------------------------------------------------------------------------------------------------------------
// redis-server processes, as bindings/python/tests/redis_server.py starts them.

export class RedisServer {
  static async start() {
    if (spawnSync('redis-server', ['--version']).error) {
      fail("redis-server not found: install Debian's redis-server (apt-get install -y redis-server redis-tools)");
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir().length < 60 ? os.tmpdir() : '/tmp', 'xg-redis-node-'));
    const server = new RedisServer();
    server.dir = dir;
    server.socket = path.join(dir, 'redis.sock');
    server.child = spawn(
      'redis-server',
      [
        '--bind',
        '127.0.0.1',
        '--port',
        '0',
        '--unixsocket',
        server.socket,
        '--unixsocketperm',
        '700',
        '--dir',
        dir,
        '--logfile',
        path.join(dir, 'redis.log'),
        '--daemonize',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 200; i++) {
      if (server.ping()) return server;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    server.stop();
    fail(`redis-server did not answer PING within 5 s (log in ${dir})`);
  }

  get url() {
    return `redis+unix://${this.socket}`;
  }

  ping() {
    const done = spawnSync('redis-cli', ['-s', this.socket, 'PING'], { encoding: 'utf8' });
    return done.status === 0 && done.stdout.trim() === 'PONG';
  }

  /** The keys the server holds, sorted (redis-cli KEYS *). */
  keys() {
    const done = spawnSync('redis-cli', ['-s', this.socket, 'KEYS', '*'], { encoding: 'utf8' });
    if (done.status !== 0) fail(`redis-cli KEYS failed: ${done.stderr}`);
    return done.stdout.split('\n').filter(Boolean).sort();
  }

  /** SIGSTOP: connections are accepted by the kernel, nothing is answered until resume(). */
  pause() {
    process.kill(this.child.pid, 'SIGSTOP');
  }

  resume() {
    process.kill(this.child.pid, 'SIGCONT');
  }

  stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.child.pid, 'SIGCONT');
      } catch {
        // gone already
      }
      this.child.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The Python suite's venv (bindings/python/.venv, or XEROGUARD_VENV), where xeroguard is installed. */
export function pythonVenv() {
  const venv = process.env.XEROGUARD_VENV || path.join(REPO, 'bindings', 'python', '.venv');
  const exe = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(exe)) {
    fail(
      `${exe} is missing: run bash bindings/python/run-tests.sh first (scripts/test.sh does), or set XEROGUARD_VENV`,
    );
  }
  return exe;
}

/** Runs a child process to its end; its stdout, or a failure showing both streams. */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}\n--- stdout\n${out}\n--- stderr\n${err}`));
    });
  });
}
