import { parseDurationSeconds } from './duration.js';
import { quote } from './quote.js';

/**
 * Start-up configuration checks shared by both planes. A bad value stops start-up with one
 * line naming the variable and what is wrong with it.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export function readOptional(env: Env, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function readRequired(env: Env, variable: string, hint: string): string {
  const value = readOptional(env, variable);
  if (value === undefined) throw new ConfigError(variable, `is required (${hint})`);
  return value;
}

/** "host:port" for a listener; port 0 picks a free port. */
export function parseListenAddress(env: Env, variable: string, fallback: string): { host: string; port: number; text: string } {
  const text = readOptional(env, variable) ?? fallback;
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new ConfigError(variable, `must be host:port, e.g. ${fallback}; got ${quote(text)}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port, text };
}

/** A comma list of http(s) URLs (etcd endpoints, upstreams). */
export function parseUrlList(env: Env, variable: string, fallback: string): string[] {
  const text = readOptional(env, variable) ?? fallback;
  return text.split(',').map((part) => {
    const item = part.trim();
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ConfigError(variable, `${quote(item)} is not a URL with scheme, e.g. http://127.0.0.1:2379`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(variable, `${quote(item)} must use http or https`);
    return item.replace(/\/+$/, '');
  });
}

export function readSecretToken(env: Env, variable: string, minLength: number): string {
  const value = readRequired(env, variable, `a random string of at least ${minLength} characters`);
  if (value.length < minLength) throw new ConfigError(variable, `must be at least ${minLength} characters, got ${value.length}`);
  if (/\s/.test(value)) throw new ConfigError(variable, 'must not contain whitespace');
  return value;
}

/** A duration such as "30s", "5m", "30d" (core/duration.ts), in milliseconds; at least `minSeconds`. */
export function readDurationMs(env: Env, variable: string, fallback: string, minSeconds = 1): number {
  const text = readOptional(env, variable) ?? fallback;
  let seconds: number;
  try {
    seconds = parseDurationSeconds(text, variable);
  } catch {
    throw new ConfigError(variable, `cannot parse duration ${quote(text)} (e.g. "${fallback}")`);
  }
  if (seconds < minSeconds) throw new ConfigError(variable, `must be at least ${minSeconds}s`);
  return seconds * 1000;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function readLogLevel(env: Env): string {
  const level = readOptional(env, 'KEYBRAKE_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new ConfigError('KEYBRAKE_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}
