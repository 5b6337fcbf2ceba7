import { describe, expect, it } from 'vitest';
import { encodePoint, qlIdent, qlString, qlTimeUs } from '../../src/store/line-protocol.js';

describe('line protocol', () => {
  it('escapes measurement, tags, keys and string fields by their own rules', () => {
    const line = encodePoint({
      measurement: 'm ,x',
      tags: { 'run id': 'a=b,c d', empty: '' },
      fields: { 'f,1': 'say "hi" \\ there\nnext', n: 3, x: 2.5, ok: true, i: { int: 7 }, skipped: null },
      timeUs: 1_700_000_000_000_001,
    });
    expect(line).toBe('m\\ \\,x,run\\ id=a\\=b\\,c\\ d f\\,1="say \\"hi\\" \\\\ there\nnext",n=3.0,x=2.5,ok=true,i=7i 1700000000000001');
  });

  it('refuses what it cannot represent instead of writing something else', () => {
    expect(() => encodePoint({ measurement: 'm', tags: { t: 'a\nb' }, fields: { f: 1 }, timeUs: 1 })).toThrow(/newline/);
    expect(() => encodePoint({ measurement: 'm', tags: {}, fields: { f: Number.NaN }, timeUs: 1 })).toThrow(/finite/);
    expect(() => encodePoint({ measurement: 'm', tags: {}, fields: { f: null }, timeUs: 1 })).toThrow(/no fields/);
    expect(() => encodePoint({ measurement: 'm', tags: {}, fields: { f: { int: 2 ** 60 } }, timeUs: 1 })).toThrow(/range/);
  });

  it('quotes InfluxQL strings and identifiers, and turns µs into ns literals', () => {
    expect(qlString("it's \\ here")).toBe("'it\\'s \\\\ here'");
    expect(qlIdent('a"b')).toBe('"a\\"b"');
    expect(qlTimeUs(1_700_000_000_123_456.7)).toBe('1700000000123456000');
  });
});
