// Checks and conversions of public arguments, done before anything crosses into C: koffi converts a JS number to a
// C integer by truncating or wrapping it (-1 becomes 2^64-1), so every number is checked against its C type here.

import { InvalidArgumentError, TooLargeError } from './errors';
import { XG_MAX_TENANT_ID_BYTES } from './native';

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
/** Milliseconds beyond this are not exact in a JS number; the C types take up to 2^64-1. */
export const SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** The tenant of a tenantless call (e.g. /connections), which counts only against the app window. */
export const TENANTLESS = '';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return typeof value;
}

/** `value` as an integer in 0..maximum (a C unsigned type's range, capped at what a JS number holds exactly). */
export function uint(value: unknown, name: string, maximum: number = SAFE_MAX): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value > BigInt(maximum)) {
      throw new InvalidArgumentError(`${name} must be an integer in 0..${maximum}, got ${value}`);
    }
    return Number(value);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > maximum) {
    throw new InvalidArgumentError(`${name} must be an integer in 0..${maximum}, got ${describe(value)}`);
  }
  return value;
}

export function u32(value: unknown, name: string): number {
  return uint(value, name, U32_MAX);
}

/** A 64-bit id (a permit, a reservation) as the library gave it: a bigint, or a safe integer. */
export function id64(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn)
      throw new InvalidArgumentError(`${name} must fit in 64 bits, got ${value}`);
    return value;
  }
  return BigInt(uint(value, name));
}

export function bool(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

// Unpaired surrogates: Buffer.from would turn them into U+FFFD silently, so text that is not Unicode is refused.
const LONE_SURROGATE = /\p{Cs}/u;

function wellFormed(text: string): boolean {
  const check = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return check ? check.call(text) : !LONE_SURROGATE.test(text);
}

/** Text as the UTF-8 bytes the library takes; lone surrogates are refused rather than replaced. */
export function utf8(text: unknown, name: string): Buffer {
  if (typeof text !== 'string') throw new InvalidArgumentError(`${name} must be a string, got ${describe(text)}`);
  if (!wellFormed(text)) throw new InvalidArgumentError(`${name} holds an unpaired surrogate: it cannot be UTF-8`);
  return Buffer.from(text, 'utf8');
}

/**
 * A tenant id as UTF-8 bytes. A tenantless call must say so with TENANTLESS (''): undefined and null are refused,
 * since they are far more often a missing tenant than a meant one.
 */
export function tenantBytes(tenant: unknown): Buffer {
  if (tenant === undefined || tenant === null) {
    throw new InvalidArgumentError(
      `tenant must be a string, not ${tenant === null ? 'null' : 'undefined'}; ` +
        "for a tenantless call (e.g. /connections) " +
        "pass TENANTLESS ('')",
    );
  }
  const bytes = utf8(tenant, 'tenant');
  if (bytes.length > XG_MAX_TENANT_ID_BYTES) {
    throw new TooLargeError(`tenant is ${bytes.length} bytes of UTF-8; the limit is ${XG_MAX_TENANT_ID_BYTES}`);
  }
  return bytes;
}

/** A callback option: a function or undefined. */
export function hook<T>(value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidArgumentError(`${name} must be a function, got ${describe(value)}`);
  }
  return value;
}
