import { isImmuneError } from '../../domain/errors.js';
import { parseVitals, type Vitals } from '../../domain/vitals.js';

/**
 * One input line of `immune replay` read the reference way: JSON.parse, then
 * parseVitals. Returns the record, null for a blank line (not an error), or
 * the reason the line is malformed. Every other reader of replay input must
 * agree with this function.
 */
export function parseLine(text: string, nowSeconds: number): Vitals | string | null {
  if (isBlank(text)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return `malformed JSON (${(e as Error).message})`;
  }
  try {
    return parseVitals(raw, nowSeconds);
  } catch (e) {
    if (isImmuneError(e)) return e.message;
    throw e;
  }
}

/** Whitespace-only (or empty); cheap for the usual line that starts with "{". */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10 && c !== 0xfeff) return false;
  }
  return true;
}
