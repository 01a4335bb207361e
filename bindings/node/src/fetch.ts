// guardFetch: a fetch-compatible function that paces, classifies, observes and safely resends Xero calls.

import { Attempt, certainlyNotSent, Guard, GuardOptions, TENANT_HEADER } from './guard';
import { bodyBytesToClassify, IDEMPOTENCY_KEY_HEADER } from './classify';
import { InvalidArgumentError } from './errors';
import { Limiter } from './limiter';
import { TransportFailure } from './vocabulary';

/** What guardFetch wraps and returns: the signature of the global fetch. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A fetch failure that got no response (undici rejects with TypeError('fetch failed') and the cause): not_sent for
 * what certainly failed before the request left, no_response for the rest. Aborts and timeouts the caller asked for,
 * and every other error (a bad URL, a bad header), are not transport failures: they reach the caller unchanged.
 */
export function fetchFailure(error: unknown): TransportFailure | null {
  if (!(error instanceof TypeError) || error.message !== 'fetch failed') return null;
  return certainlyNotSent(error) ? 'not_sent' : 'no_response';
}

/** Up to `wanted` bytes of a body stream, then the stream is cancelled (it is a clone's: the caller's is untouched). */
async function readPrefix(body: ReadableStream<Uint8Array>, wanted: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < wanted) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    // Not awaited: cancelling one branch of a tee settles only once the other (the caller's) is cancelled too.
    reader.cancel().catch(() => undefined);
  }
  const all = Buffer.concat(chunks);
  return all.subarray(0, Math.min(all.length, wanted));
}

/**
 * Wraps `fetch` (the global one, or any with its signature): every request to a guarded prefix (Xero's API by
 * default) waits for a permit for its Xero-Tenant-Id; its response is classified, reading the part of the body the
 * library's rule asks for from a clone (the Response handed back is the one fetch gave, unread), and observed, and the
 * permit released. It is sent again when the library says it may be (a 429, a 503 outage, a 500 of a GET, a write
 * that carries an Idempotency-Key, a connection that failed before sending...). Every POST, PUT and PATCH without an
 * Idempotency-Key gets one, the same on every resend. Once it stops, the last Response is returned as it is, or the
 * last transport error thrown unchanged. An `init.signal` ends the wait for a permit and the wait between resends.
 */
export function guardFetch(fetchFunction: Fetch, limiter: Limiter, options: GuardOptions = {}): Fetch {
  if (typeof fetchFunction !== 'function') throw new InvalidArgumentError('guardFetch needs a fetch function');
  const guard = new Guard(limiter, options, fetchFailure);
  return async function guardedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    // Request normalises every input form (URL, method, headers, a body of any kind) as fetch would.
    const request = new Request(input, init);
    // Not paced: sent as it came (as `request`, which now holds a Request input's body).
    if (!guard.applies(request.url)) return fetchFunction(request);
    const headers = new Headers(request.headers);
    const call = guard.prepare(
      request.method,
      request.url,
      headers.get(TENANT_HEADER),
      headers.has(IDEMPOTENCY_KEY_HEADER),
      (key) => headers.set(IDEMPOTENCY_KEY_HEADER, key),
    );
    // Buffered, so a resend sends the same bytes again.
    const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const attemptInit: RequestInit = {
      ...init,
      method: request.method,
      headers,
      body,
      redirect: request.redirect,
      signal,
    };
    return guard.run<Response>(
      call,
      async (): Promise<Attempt<Response>> => {
        const response = await fetchFunction(request.url, attemptInit);
        const wanted = bodyBytesToClassify(response.status, response.headers.get('content-type'));
        let read: Uint8Array | null = null;
        if (wanted > 0 && response.body !== null) read = await readPrefix(response.clone().body!, wanted);
        return {
          status: response.status,
          headers: response.headers,
          body: read,
          settle: () => response,
          discard: () => {
            response.body?.cancel().catch(() => undefined);
          },
        };
      },
      signal,
    );
  };
}
