// Worker threads for the operations of limiters shared through Redis: each operation may wait on the store (up to
// its deadline), so it runs off the event loop. Why threads and not koffi's async calls: the library keeps its last
// error message per thread, and koffi runs async calls on whichever libuv thread is free, so the message of a failed
// async call cannot be read back; a worker makes the call and reads the message on the same thread, and answers
// with both.
//
// The threads start with the first shared limiter and hold the process open only while they have work (they are
// unref'd when idle), so a script that is done exits.

import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { XeroGuardError } from './errors';
import type { OpName, OpResult } from './ops';

/** How many threads run store operations at once (a stalled store holds each for at most its deadline). */
export const POOL_SIZE = 4;

interface Pending {
  resolve: (result: OpResult<unknown>) => void;
  reject: (error: Error) => void;
}

class Thread {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(onGone: (thread: Thread) => void) {
    this.worker = new Worker(path.join(__dirname, 'worker.js'));
    this.worker.unref();
    this.worker.on('message', (message: { id: number; result: OpResult<unknown> }) => {
      const pending = this.pending.get(message.id);
      if (pending === undefined) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) this.worker.unref();
      pending.resolve(message.result);
    });
    const fail = (error: Error): void => {
      onGone(this);
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
    this.worker.on('error', (error: Error) =>
      fail(new XeroGuardError(`xeroguard: a worker thread failed: ${error.message}`)),
    );
    this.worker.on('exit', (code: number) =>
      fail(new XeroGuardError(`xeroguard: a worker thread exited (code ${code})`)),
    );
  }

  run(id: number, op: OpName, args: unknown[]): Promise<OpResult<unknown>> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }
}

const threads: Thread[] = [];
let nextId = 1;

/** Runs one operation on the least busy thread (starting threads up to POOL_SIZE as they are needed). */
export function runOffThread<T>(op: OpName, args: unknown[]): Promise<OpResult<T>> {
  let thread = threads.find((t) => t.pending.size === 0);
  if (thread === undefined && threads.length < POOL_SIZE) {
    thread = new Thread((gone) => {
      const at = threads.indexOf(gone);
      if (at >= 0) threads.splice(at, 1);
    });
    threads.push(thread);
  }
  if (thread === undefined) thread = threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  return thread.run(nextId++, op, args) as Promise<OpResult<T>>;
}

/** Threads running now (for tests). */
export function poolThreads(): number {
  return threads.length;
}
