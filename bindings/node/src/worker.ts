// A worker thread of pool.ts: runs the limiter operations of limiters shared through Redis, off the event loop,
// each with its own thread's last-error message.

import { parentPort } from 'node:worker_threads';

import { OpName, runOp } from './ops';

interface Request {
  id: number;
  op: OpName;
  args: unknown[];
}

if (parentPort === null) throw new Error('xeroguard: worker.js runs only as a worker thread');
const port = parentPort;
port.on('message', (request: Request) => {
  let result;
  try {
    result = runOp(request.op, request.args);
  } catch (error) {
    // A bug of the binding (an argument koffi refused): reported, never a silent hang.
    result = { ok: false, status: -1, statusName: 'binding_error', message: String((error as Error)?.stack ?? error) };
  }
  port.postMessage({ id: request.id, result });
});
