import { createHash } from 'node:crypto';

/**
 * First 16 hex characters of SHA-256 of the system prompt: the text of every
 * `system` (or `developer`, its newer name) message, joined by newlines; ''
 * when there is none. A single system message hashes exactly like the OTLP
 * receiver hashes gen_ai.system_instructions, so switching integrations does
 * not look like a prompt change.
 */
export function systemPromptHash(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  const parts: string[] = [];
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const role = (m as { role?: unknown }).role;
    if (role !== 'system' && role !== 'developer') continue;
    parts.push(textOf((m as { content?: unknown }).content));
  }
  return parts.length === 0 ? '' : createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

/** A message's content: a string, or the text parts of a content array joined by newlines. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (typeof p === 'string' ? p : typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
    .join('\n');
}
