/**
 * Facts about text that several boundaries check: what PostgreSQL (and a terminal, a CSV) cannot
 * hold, and how to cut text without splitting a character. Pure.
 */

/** C0 control characters (NUL included) and DEL. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** A surrogate without its pair: not Unicode text (PostgreSQL refuses it; JSON writes it as an escape). */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The first `end` UTF-16 code units of `text`, one fewer if that would split a surrogate pair. */
export function cutAtCodePoint(text: string, end: number): string {
  const last = text.charCodeAt(end - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? end - 1 : end);
}
