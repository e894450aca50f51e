// How a unit of work that lost a race is retried: the backoff policy and its pauses.
import { randomInt } from 'node:crypto';

/**
 * How a session that lost a race is retried: up to `attempts` times, each after a random pause
 * of 0 to min(maxDelayMs, baseDelayMs × 2^retry) ms (exponential backoff with full jitter, so
 * writers that collided do not collide again in step). The defaults leave about 12 s of backoff
 * before a request gives up with `conflict`.
 */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 150, baseDelayMs: 1, maxDelayMs: 160 };

/** The pause before retry number `retry` (1-based): timing only, never part of a recorded result. */
export function retryDelayMs(retry: number, p: RetryPolicy = DEFAULT_RETRY): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(retry, 30));
  return randomInt(0, Math.max(1, Math.floor(cap)) + 1);
}
