// guardAxios: an axios adapter around the instance's own that paces, classifies, observes and safely resends Xero
// calls (xero-node sends every call through the axios module's default instance).

import { Readable } from 'node:stream';

import { Attempt, certainlyNotSent, Guard, GuardOptions, TENANT_HEADER } from './guard';
import { bodyBytesToClassify, IDEMPOTENCY_KEY_HEADER } from './classify';
import { InvalidArgumentError } from './errors';
import { Limiter } from './limiter';
import { TransportFailure } from './vocabulary';

/** The part of an axios request config the guard reads (axios' own type fits). */
export interface AxiosLikeConfig {
  url?: string;
  baseURL?: string;
  method?: string;
  headers?: unknown;
  data?: unknown;
  signal?: unknown;
  responseType?: string;
  [key: string]: unknown;
}

export interface AxiosLikeResponse {
  status: number;
  headers: unknown;
  data: unknown;
  [key: string]: unknown;
}

export type AxiosLikeAdapter = (config: AxiosLikeConfig) => Promise<AxiosLikeResponse>;

/** An axios instance or the axios module itself (axios' own types fit: the signatures are axios' own, loosely). */
export interface AxiosLikeInstance {
  defaults: { adapter?: unknown };
  getAdapter?(adapters: never, config?: never): unknown;
}

export interface AxiosGuardOptions extends GuardOptions {
  /**
   * The axios module, to resolve the instance's adapter names (['xhr', 'http', 'fetch']) into a function: needed for
   * an instance made by axios.create() whose adapter is not a function; the axios module itself resolves its own.
   */
  axios?: { getAdapter(adapters: never, config?: never): unknown };
}

// Axios error codes that are the request's own fault or the caller's wish, never a transport failure to resend.
const NOT_TRANSPORT = new Set([
  'ERR_CANCELED',
  'ERR_BAD_OPTION',
  'ERR_BAD_OPTION_VALUE',
  'ERR_INVALID_URL',
  'ERR_NOT_SUPPORT',
  'ERR_DEPRECATED',
  'ERR_FR_TOO_MANY_REDIRECTS',
  'ERR_FORM_DATA_DEPTH_EXCEEDED',
]);

/**
 * An axios failure that got no response: not_sent for what certainly failed before the request left (connect, DNS,
 * TLS certificate), no_response for every other network error (a timeout, a reset: the server may have acted).
 * Cancellations and request errors (a bad URL, a bad option) are not transport failures.
 */
export function axiosFailure(error: unknown): TransportFailure | null {
  if (error === null || typeof error !== 'object' || (error as { isAxiosError?: unknown }).isAxiosError !== true)
    return null;
  const e = error as { code?: unknown; response?: unknown; name?: unknown };
  if (e.response !== undefined && e.response !== null) return null; // a response exists: classified, not failed
  if (e.name === 'CanceledError' || (typeof e.code === 'string' && NOT_TRANSPORT.has(e.code))) return null;
  return certainlyNotSent(error) ? 'not_sent' : 'no_response';
}

interface HeaderBag {
  get?: (name: string) => unknown;
  set?: (name: string, value: string) => unknown;
  [name: string]: unknown;
}

/**
 * A request header's value, the name matched case-insensitively; an unset one (xero-node leaves some undefined) is
 * absent.
 */
function header(headers: HeaderBag | undefined, name: string): string | null {
  if (headers === undefined || headers === null) return null;
  let value: unknown;
  if (typeof headers.get === 'function') {
    value = headers.get(name);
  } else {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
    value = key === undefined ? undefined : headers[key];
  }
  return value === undefined || value === null || value === false ? null : String(value);
}

function setHeader(config: AxiosLikeConfig, name: string, value: string): void {
  const headers = (config.headers ?? (config.headers = {})) as HeaderBag;
  if (typeof headers.set === 'function') {
    headers.set(name, value);
    return;
  }
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
  headers[key] = value;
}

function fullUrl(config: AxiosLikeConfig): string {
  const url = config.url ?? '';
  if (/^[a-z][a-z\d+\-.]*:\/\//i.test(url) || !config.baseURL) return url;
  return `${config.baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`;
}

function isStream(value: unknown): value is Readable {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { pipe?: unknown }).pipe === 'function' &&
    typeof (value as { on?: unknown }).on === 'function'
  );
}

async function buffered(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

/**
 * What a response's data holds, up to `wanted` bytes. A streamed body (responseType 'stream') is read only that far and
 * handed on as the part read followed by the rest, unread.
 */
async function bodyOf(response: AxiosLikeResponse, wanted: number): Promise<Uint8Array | null> {
  const data = response.data;
  if (wanted === 0 || data === undefined || data === null) return null;
  if (typeof data === 'string')
    return Buffer.from(data.length > wanted ? data.slice(0, wanted) : data, 'utf8').subarray(0, wanted);
  if (data instanceof Uint8Array) return data.subarray(0, wanted);
  if (data instanceof ArrayBuffer) return new Uint8Array(data, 0, Math.min(wanted, data.byteLength));
  if (isStream(data)) {
    const iterator = data[Symbol.asyncIterator]();
    const read: Buffer[] = [];
    let size = 0;
    while (size <= wanted) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as string);
      read.push(chunk);
      size += chunk.length;
    }
    response.data = Readable.from(
      (async function* replay() {
        yield* read;
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
      })(),
    );
    return Buffer.concat(read).subarray(0, wanted);
  }
  // An adapter that answers parsed data: classified from its JSON text.
  return Buffer.from(JSON.stringify(data), 'utf8').subarray(0, wanted);
}

function contentType(headers: unknown): string | null {
  return header(headers as HeaderBag | undefined, 'content-type');
}

const GUARDED = Symbol.for('xeroguard.axios.original-adapter');

/**
 * Guards an axios instance, or the axios module itself (the default instance, which xero-node uses): its adapter is
 * wrapped so that every request to a guarded prefix (Xero's API by default) waits for a permit for its Xero-Tenant-Id;
 * the response is classified (from as much of its data as the library's rule asks for) and observed, and the permit
 * released; it is sent again when the library says it may be, and otherwise settles exactly as it would have
 * unguarded (a non-2xx rejects with axios' own error). Every POST, PUT and PATCH without an Idempotency-Key gets one,
 * the same on every resend. Returns the instance. `unguardAxios` puts the original adapter back.
 */
export function guardAxios<T extends AxiosLikeInstance>(
  instance: T,
  limiter: Limiter,
  options: AxiosGuardOptions = {},
): T {
  if (
    instance === null ||
    (typeof instance !== 'object' && typeof instance !== 'function') ||
    typeof instance.defaults !== 'object'
  ) {
    throw new InvalidArgumentError('guardAxios needs an axios instance (or the axios module)');
  }
  const defaults = instance.defaults as Record<string | symbol, unknown>;
  if (defaults[GUARDED] !== undefined) throw new InvalidArgumentError('this axios instance is guarded already');
  const { axios, ...guardOptions } = options;
  const guard = new Guard(limiter, guardOptions, axiosFailure);
  const original = defaults.adapter;
  type Resolve = (adapters: unknown, config?: unknown) => AxiosLikeAdapter;
  const resolver = (
    typeof instance.getAdapter === 'function' ? instance.getAdapter.bind(instance) : axios?.getAdapter?.bind(axios)
  ) as Resolve | undefined;
  if (typeof original !== 'function' && resolver === undefined) {
    throw new InvalidArgumentError(
      "this axios instance's adapter is a list of names; pass the axios module to resolve it: " +
        'guardAxios(instance, limiter, { axios })',
    );
  }
  const inner = (config: AxiosLikeConfig): AxiosLikeAdapter =>
    typeof original === 'function' ? (original as AxiosLikeAdapter) : resolver!(original, config);

  const adapter: AxiosLikeAdapter = async function xeroguardAdapter(
    config: AxiosLikeConfig,
  ): Promise<AxiosLikeResponse> {
    const send = inner(config);
    const url = fullUrl(config);
    if (!guard.applies(url)) return send(config);
    const headers = config.headers as HeaderBag | undefined;
    const call = guard.prepare(
      config.method ?? 'get',
      url,
      header(headers, TENANT_HEADER),
      header(headers, IDEMPOTENCY_KEY_HEADER) !== null,
      (key) => setHeader(config, IDEMPOTENCY_KEY_HEADER, key),
    );
    if (isStream(config.data)) config.data = await buffered(config.data); // a resend sends the same bytes again
    const signal = config.signal instanceof AbortSignal ? config.signal : undefined;
    return guard.run<AxiosLikeResponse>(
      call,
      async (): Promise<Attempt<AxiosLikeResponse>> => {
        let response: AxiosLikeResponse;
        let settle: () => AxiosLikeResponse;
        try {
          response = await send(config);
          const ok = response;
          settle = () => ok;
        } catch (error) {
          const failed = (error as { response?: AxiosLikeResponse } | null)?.response;
          if (failed === undefined || failed === null) throw error; // no response: the guard asks axiosFailure
          response = failed;
          settle = () => {
            throw error; // as axios would have: validateStatus refused the status
          };
        }
        const body = await bodyOf(response, bodyBytesToClassify(response.status, contentType(response.headers)));
        const data = response;
        return {
          status: response.status,
          headers: response.headers as Attempt<AxiosLikeResponse>['headers'],
          body,
          settle,
          discard: () => {
            if (isStream(data.data)) data.data.destroy();
          },
        };
      },
      signal,
    );
  };
  defaults[GUARDED] = { original };
  defaults.adapter = adapter;
  return instance;
}

/** Puts back the adapter guardAxios replaced. */
export function unguardAxios<T extends AxiosLikeInstance>(instance: T): T {
  const defaults = instance.defaults as Record<string | symbol, unknown>;
  const saved = defaults[GUARDED] as { original: unknown } | undefined;
  if (saved !== undefined) {
    defaults.adapter = saved.original;
    delete defaults[GUARDED];
  }
  return instance;
}
