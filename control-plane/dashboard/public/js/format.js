// Money and time as an operator reads them. Money stays integer micro-USD until printed.

const MICROS = 1_000_000;
const grouping = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** "$1,234.50", "$0.0079": cents always, more digits only when they are not zero. @param {number} micros */
export function usd(micros) {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(micros));
  let fraction = String(abs % MICROS).padStart(6, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${sign}$${grouping.format(Math.floor(abs / MICROS))}.${fraction}`;
}

/**
 * A vendor's amount (integer minor units, as Stripe sends them) as people read it: "$27.00",
 * "€27.00", "¥2,700" (the currency's own minor-unit digits). A code Intl does not take is
 * shown as it came: "2700 xx".
 * @param {number} minor @param {string} currency
 */
export function vendorAmount(minor, currency) {
  let format;
  try {
    format = new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() });
  } catch {
    return `${minor} ${currency}`.trim();
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  // Exact: the decimal string, not minor / 10^digits in floating point.
  const abs = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, '0');
  const decimal = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return format.format(/** @type {any} */ (`${minor < 0 ? '-' : ''}${decimal}`));
}

/** @param {string | null | undefined} iso */
export function dateTimeText(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

/** @param {string | null | undefined} iso */
export function timeText(iso) {
  return iso ? timeOnly.format(new Date(iso)) : '—';
}

/** "3d 4h", "4h 59m", "59m", "40s". @param {number} ms */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return hr > 0 ? `${d}d ${hr}h` : `${d}d`;
  if (hr > 0) return m > 0 ? `${hr}h ${m}m` : `${hr}h`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

/**
 * Time to a key's expiry as text: "in 3h 59m", "expired 5m ago", "revoked".
 * @param {{status: string, expires_at: string | null, revoked_at: string | null}} key
 */
export function expiryText(key, now = Date.now()) {
  if (key.revoked_at) return 'revoked';
  if (!key.expires_at) return '—';
  const left = Date.parse(key.expires_at) - now;
  return left > 0 ? `in ${duration(left)}` : `expired ${duration(-left)} ago`;
}

/** datetime-local input value → ISO 8601 (empty stays empty). @param {string} value */
export function localInputToIso(value) {
  if (!value) return '';
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '';
}
