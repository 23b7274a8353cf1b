// The admin JSON API on this origin. The operator token lives in sessionStorage only (this tab,
// until it closes or the operator signs out) and goes out as `Authorization: Bearer`.

const TOKEN_KEY = 'keybrake.operatorToken';

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** @type {(error: ApiError) => void} */
let onUnauthenticated = () => {};
/** Called when a signed-in request is refused with 401 (token deleted, wrong stack…). @param {(error: ApiError) => void} handler */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}
/** @param {string} token */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * @param {string} method
 * @param {string} path e.g. "/vault/keys?limit=50"
 * @param {{body?: unknown, signal?: AbortSignal, token?: string}} [options] `token` overrides the stored one (sign-in)
 * @returns {Promise<any>}
 */
export async function api(method, path, options = {}) {
  const token = options.token ?? getToken();
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'the control plane could not be reached');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text === '' ? null : JSON.parse(text);
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.error?.code ?? `http_${response.status}`, data?.error?.message ?? `HTTP ${response.status}`);
    if (response.status === 401 && options.token === undefined) onUnauthenticated(error);
    throw error;
  }
  return data;
}

/** A query string of the non-empty values ("" when none). @param {Record<string, string | number | null | undefined>} params */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== '' && value !== null && value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** True for the AbortError of a view that was left. @param {unknown} error */
export function isAbort(error) {
  return error instanceof DOMException && error.name === 'AbortError';
}

/** Sleeps unless aborted (then rejects with the abort). @param {number} ms @param {AbortSignal} signal */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(undefined);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
