import type { Vitals } from '../../domain/vitals.js';
import { emptyList } from '../../engine/empty-list.js';

/**
 * Validated vitals in columns, as the parse worker hands them to the thread
 * that runs the engine. Posting plain objects would cost as much as parsing
 * them (structured clone walks every property). The numbers live in shared
 * memory (a ring of chunk slots, see ChunkRing) and each distinct string is
 * sent once per chunk.
 */
export interface VitalsChunk {
  records: number;
  /** NUM_COLS per record: timestamp (NaN when absent), latency_ms, input_tokens, output_tokens, token_count, cost, tool_calls, retries. */
  num: Float64Array;
  /**
   * REF_COLS per record: agent_id (the agent's number, see `agents`), agent_type, model, provider, error_type, prompt_hash
   * (string numbers, see `strings`), mcp_servers, tool_names (indexes into lists, -1 for []), success (0/1).
   */
  ref: Int32Array;
  /**
   * The ids of the agents first seen in this chunk. Agents are numbered across the whole input in order of first
   * appearance, so `agents[k]` is agent number `firstAgent + k`: the engine thread finds a record's agent by index
   * and each id crosses between the threads once.
   */
  agents: string[];
  firstAgent: number;
  /**
   * The label strings first used in this chunk: `strings[k]` is string number `firstString + k`. Labels are
   * numbered across chunks too, so one label is one string object on the engine thread and the engine's
   * comparisons of models, providers and prompts are pointer comparisons. firstString 0 starts a new
   * numbering (an input with very many distinct labels restarts it, which bounds the dictionary).
   */
  strings: string[];
  firstString: number;
  lists: string[][];
  /** Lines that are not valid records, in input order; `before` is the index of the record that follows them. */
  malformed: MalformedLine[];
}

export interface MalformedLine {
  before: number;
  line: number;
  reason: string;
}

export const NUM_COLS = 8;
export const REF_COLS = 9;
export const N_TIMESTAMP = 0;
export const N_LATENCY = 1;
export const N_INPUT_TOKENS = 2;
export const N_OUTPUT_TOKENS = 3;
export const N_TOKEN_COUNT = 4;
export const N_COST = 5;
export const N_TOOL_CALLS = 6;
export const N_RETRIES = 7;
export const R_AGENT_ID = 0;
export const R_AGENT_TYPE = 1;
export const R_MODEL = 2;
export const R_PROVIDER = 3;
export const R_ERROR_TYPE = 4;
export const R_PROMPT_HASH = 5;
export const R_MCP_SERVERS = 6;
export const R_TOOL_NAMES = 7;
export const R_SUCCESS = 8;

/** Every numbering of strings starts with the two defaults parseVitals applies. */
export const EMPTY_STRING = 0;
export const EXTERNAL = 1;
/** Distinct label strings kept numbered at most (≈ 4 MB on each thread); past it the numbering restarts at the next chunk. */
export const STRING_LIMIT = 1 << 16;

/**
 * Record i of chunk c as a fresh object, for a chunk read on its own (the first chunk of an input: tests
 * and tools; the replay reads records with a VitalsReader). `nowSeconds` is the timestamp of a record that had none.
 */
export function vitalsAt(c: VitalsChunk, i: number, nowSeconds: number): Vitals {
  const reader = new VitalsReader();
  reader.admit(c);
  return { ...reader.at(c, i, nowSeconds) };
}

/** Lists of a record that has none: shared, so frozen (the engine copies lists it keeps). */
const NO_ITEMS = Object.freeze([]) as unknown as string[];

/**
 * A record object with parseVitals's fields in parseVitals's order (the engine sees one object shape on
 * every path). The numbers start as NaN, a double: a field that first holds a small integer and later a
 * fraction changes the object's hidden class, and the engine code compiled for the old one is thrown away.
 */
export function blankVitals(): Vitals {
  return {
    agent_id: '',
    agent_type: '',
    timestamp: NaN,
    latency_ms: NaN,
    input_tokens: NaN,
    output_tokens: NaN,
    token_count: NaN,
    cost: NaN,
    tool_calls: NaN,
    retries: NaN,
    success: false,
    model: '',
    provider: '',
    error_type: '',
    prompt_hash: '',
    mcp_servers: NO_ITEMS,
    tool_names: NO_ITEMS,
  };
}

/** Writes record i of chunk c into `v` and returns it; `strings` is every label string by number. */
function fill(v: Vitals, c: VitalsChunk, i: number, nowSeconds: number, agentId: string, strings: readonly string[]): Vitals {
  const num = c.num;
  const ref = c.ref;
  const n = i * NUM_COLS;
  const r = i * REF_COLS;
  const ts = num[n + N_TIMESTAMP];
  const mcp = ref[r + R_MCP_SERVERS];
  const tools = ref[r + R_TOOL_NAMES];
  v.agent_id = agentId;
  v.agent_type = strings[ref[r + R_AGENT_TYPE]];
  v.timestamp = ts === ts ? ts : nowSeconds;
  v.latency_ms = num[n + N_LATENCY];
  v.input_tokens = num[n + N_INPUT_TOKENS];
  v.output_tokens = num[n + N_OUTPUT_TOKENS];
  v.token_count = num[n + N_TOKEN_COUNT];
  v.cost = num[n + N_COST];
  v.tool_calls = num[n + N_TOOL_CALLS];
  v.retries = num[n + N_RETRIES];
  v.success = ref[r + R_SUCCESS] === 1;
  v.model = strings[ref[r + R_MODEL]];
  v.provider = strings[ref[r + R_PROVIDER]];
  v.error_type = strings[ref[r + R_ERROR_TYPE]];
  v.prompt_hash = strings[ref[r + R_PROMPT_HASH]];
  // The chunk's lists are shared by its records, not copied (a copy per record was a third of the engine
  // thread's allocation, so of its scavenges): admit() froze them, and the engine copies what it keeps.
  v.mcp_servers = mcp < 0 ? NO_ITEMS : c.lists[mcp];
  v.tool_names = tools < 0 ? NO_ITEMS : c.lists[tools];
  return v;
}

/**
 * Reads records on the engine thread. Each agent has one record object, overwritten with its next
 * record: the engine keeps only an agent's latest sample (AgentRuntime.last), so nothing it holds
 * changes under it, and the replay allocates nothing per record (at 600k records/s, one object per
 * record was a tenth of the engine thread's time in allocation and scavenges).
 */
export class VitalsReader {
  private readonly ids: string[] = [];
  private readonly latest: Vitals[] = [];
  private strings: string[] = [];

  /** Learns the agents and strings first used in chunk `c`; call for every chunk, in order, before reading it. */
  admit(c: VitalsChunk): void {
    if (c.firstAgent !== this.ids.length) throw new Error(`replay chunk out of order: agents from ${c.firstAgent}, expected ${this.ids.length}`);
    if (c.firstString === 0) this.strings = [];
    else if (c.firstString !== this.strings.length) throw new Error(`replay chunk out of order: strings from ${c.firstString}, expected ${this.strings.length}`);
    for (let k = 0; k < c.agents.length; k++) this.ids.push(c.agents[k]);
    for (let k = 0; k < c.strings.length; k++) this.strings.push(c.strings[k]);
    for (let k = 0; k < c.lists.length; k++) Object.freeze(c.lists[k]);
  }

  /** Record i of chunk c, in its agent's object (valid until that agent's next record is read). */
  at(c: VitalsChunk, i: number, nowSeconds: number): Vitals {
    const a = c.ref[i * REF_COLS + R_AGENT_ID];
    let v = this.latest[a];
    if (v === undefined) {
      // Filled in agent order, so the array stays packed.
      while (this.latest.length <= a) this.latest.push(blankVitals());
      v = this.latest[a];
    }
    return fill(v, c, i, nowSeconds, this.ids[a], this.strings);
  }
}

/**
 * Chunk slots in shared memory, allocated once: the parse worker fills slot
 * i % slots while the engine thread reads the others. Fresh buffers per chunk
 * would cost a page fault per 4 KB touched, which on this VM is a third of the
 * parse time.
 */
export class ChunkRing {
  readonly num: Float64Array[];
  readonly ref: Int32Array[];

  constructor(
    readonly slots: number,
    readonly capacity: number,
    readonly memory = { num: new SharedArrayBuffer(slots * capacity * NUM_COLS * 8), ref: new SharedArrayBuffer(slots * capacity * REF_COLS * 4) },
  ) {
    this.num = Array.from({ length: slots }, (_, i) => new Float64Array(memory.num, i * capacity * NUM_COLS * 8, capacity * NUM_COLS));
    this.ref = Array.from({ length: slots }, (_, i) => new Int32Array(memory.ref, i * capacity * REF_COLS * 4, capacity * REF_COLS));
  }
}

/**
 * Builds chunks in the parse worker. A record is written in place into the
 * next row (num/ref at `row`) and only counts once `commit` is called, so a
 * line the fast scanner gives up on half-way leaves nothing behind.
 */
export class ChunkWriter {
  records = 0;
  num: Float64Array;
  ref: Int32Array;
  private strings: string[] = emptyList();
  private lists: string[][] = emptyList();
  private malformed: MalformedLine[] = emptyList();
  /** Agent numbers for the whole input (never cleared: one entry per agent, as the engine keeps state per agent). */
  private readonly agentIds = new ByteInterner();
  private agentCount = 0;
  private agents: string[] = emptyList();
  private firstAgent = 0;
  /** Label string numbers (kept across chunks up to stringLimit). */
  private readonly stringIds = new ByteInterner();
  private stringCount = 0;
  private firstString = 0;
  private readonly listIds = new ByteInterner();

  /** Writes into `into` (a ring slot) or into arrays of its own. */
  constructor(
    readonly capacity: number,
    into?: { num: Float64Array; ref: Int32Array },
    private readonly stringLimit = STRING_LIMIT,
  ) {
    this.num = into?.num ?? new Float64Array(capacity * NUM_COLS);
    this.ref = into?.ref ?? new Int32Array(capacity * REF_COLS);
    this.reset();
  }

  get full(): boolean {
    return this.records === this.capacity;
  }

  get empty(): boolean {
    return this.records === 0 && this.malformed.length === 0;
  }

  /** Number of the ASCII string in buf[start, end) whose FNV-1a hash is `hash`. */
  internBytes(buf: Uint8Array, start: number, end: number, hash: number): number {
    const id = this.stringIds.find(buf, start, end, hash);
    return id >= 0 ? id : this.addString(latin1(buf, start, end), hash);
  }

  /** Id of a list whose JSON text is buf[start, end); `items` builds it the first time. */
  internList(buf: Uint8Array, start: number, end: number, hash: number, items: () => string[]): number {
    const id = this.listIds.find(buf, start, end, hash);
    if (id >= 0) return id;
    this.lists.push(items());
    return this.listIds.add(latin1(buf, start, end), hash, this.lists.length - 1);
  }

  /** Number of the agent whose ASCII id is buf[start, end), with FNV-1a hash `hash`. */
  internAgent(buf: Uint8Array, start: number, end: number, hash: number): number {
    const id = this.agentIds.find(buf, start, end, hash);
    return id >= 0 ? id : this.addAgent(latin1(buf, start, end), hash);
  }

  /** internAgent for an id given as a string (the reference path; agent ids are ASCII by schema). */
  internAgentId(agentId: string): number {
    const h = hashOf(agentId);
    const id = this.agentIds.findString(agentId, h);
    return id >= 0 ? id : this.addAgent(agentId, h);
  }

  private addAgent(agentId: string, hash: number): number {
    this.agents.push(agentId);
    return this.agentIds.add(agentId, hash, this.agentCount++);
  }

  /** internBytes for a string (the reference path; it may hold any characters, which then never match input bytes). */
  internString(s: string): number {
    const h = hashOf(s);
    const id = this.stringIds.findString(s, h);
    return id >= 0 ? id : this.addString(s, h);
  }

  private addString(s: string, hash: number): number {
    this.strings.push(s);
    return this.stringIds.add(s, hash, this.stringCount++);
  }

  /** Appends a record validated by parseVitals (the reference path, for lines the fast scanner leaves to it). */
  addVitals(v: Vitals, timestampGiven: boolean): void {
    const n = this.records * NUM_COLS;
    const r = this.records * REF_COLS;
    const num = this.num;
    const ref = this.ref;
    num[n + N_TIMESTAMP] = timestampGiven ? v.timestamp : NaN;
    num[n + N_LATENCY] = v.latency_ms;
    num[n + N_INPUT_TOKENS] = v.input_tokens;
    num[n + N_OUTPUT_TOKENS] = v.output_tokens;
    num[n + N_TOKEN_COUNT] = v.token_count;
    num[n + N_COST] = v.cost;
    num[n + N_TOOL_CALLS] = v.tool_calls;
    num[n + N_RETRIES] = v.retries;
    ref[r + R_AGENT_ID] = this.internAgentId(v.agent_id);
    ref[r + R_AGENT_TYPE] = this.internString(v.agent_type);
    ref[r + R_MODEL] = this.internString(v.model);
    ref[r + R_PROVIDER] = this.internString(v.provider);
    ref[r + R_ERROR_TYPE] = this.internString(v.error_type);
    ref[r + R_PROMPT_HASH] = this.internString(v.prompt_hash);
    ref[r + R_MCP_SERVERS] = v.mcp_servers.length === 0 ? -1 : this.lists.push([...v.mcp_servers]) - 1;
    ref[r + R_TOOL_NAMES] = v.tool_names.length === 0 ? -1 : this.lists.push([...v.tool_names]) - 1;
    ref[r + R_SUCCESS] = v.success ? 1 : 0;
    this.records += 1;
  }

  /** Counts the row written in place at index `records`. */
  commit(): void {
    this.records += 1;
  }

  addMalformed(line: number, reason: string): void {
    this.malformed.push({ before: this.records, line, reason });
  }

  /**
   * Hands the chunk over and starts the next one in `into` (a free ring slot),
   * or in new arrays: the chunk's arrays are not written again either way.
   */
  take(into?: { num: Float64Array; ref: Int32Array }): VitalsChunk {
    const c: VitalsChunk = { records: this.records, num: this.num, ref: this.ref, agents: this.agents, firstAgent: this.firstAgent, strings: this.strings, firstString: this.firstString, lists: this.lists, malformed: this.malformed };
    this.num = into?.num ?? new Float64Array(this.capacity * NUM_COLS);
    this.ref = into?.ref ?? new Int32Array(this.capacity * REF_COLS);
    this.reset();
    return c;
  }

  private reset(): void {
    this.records = 0;
    this.agents = emptyList();
    this.firstAgent = this.agentCount;
    this.strings = emptyList();
    this.lists = emptyList();
    this.malformed = emptyList();
    this.listIds.clear();
    if (this.stringCount > this.stringLimit) {
      this.stringIds.clear();
      this.stringCount = 0;
    }
    this.firstString = this.stringCount;
    if (this.stringCount === 0) {
      this.internString('');
      this.internString('external');
    }
  }
}

/** FNV-1a step: the scanner hashes string bytes while it validates them. */
export function fnv1a(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, 16777619);
}
export const FNV_OFFSET = 0x811c9dc5 | 0;

/** FNV-1a over a string's UTF-16 code units: the same hash as its bytes when it is ASCII. */
function hashOf(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = fnv1a(h, s.charCodeAt(i));
  return h;
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/**
 * Open-addressing table from byte strings to ids, looked up straight from the
 * input buffer: no string is allocated for a value seen before in the chunk.
 */
class ByteInterner {
  /** The key of each occupied slot (read only where slots[i] !== 0, so clear() leaves stale keys). */
  private keys: string[] = new Array<string>(1024).fill('');
  private hashes = new Int32Array(1024);
  /** id + 1 per slot; 0 = free. */
  private slots = new Int32Array(1024);
  private used = 0;

  clear(): void {
    if (this.used === 0) return;
    this.slots.fill(0);
    this.used = 0;
  }

  find(buf: Uint8Array, start: number, end: number, hash: number): number {
    const mask = this.slots.length - 1;
    const len = end - start;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i];
      if (slot === 0) return -1;
      if (this.hashes[i] !== hash) continue;
      const key = this.keys[i];
      if (key.length !== len) continue;
      let j = 0;
      while (j < len && key.charCodeAt(j) === buf[start + j]) j++;
      if (j === len) return slot - 1;
    }
  }

  /** find() for a key given as a string. */
  findString(key: string, hash: number): number {
    const mask = this.slots.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i];
      if (slot === 0) return -1;
      if (this.hashes[i] === hash && this.keys[i] === key) return slot - 1;
    }
  }

  add(key: string, hash: number, id: number): number {
    if ((this.used + 1) * 2 > this.slots.length) this.grow();
    this.place(key, hash, id);
    this.used += 1;
    return id;
  }

  private place(key: string, hash: number, id: number): void {
    const mask = this.slots.length - 1;
    let i = hash & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = id + 1;
    this.hashes[i] = hash;
    this.keys[i] = key;
  }

  private grow(): void {
    const { keys, hashes, slots } = this;
    this.slots = new Int32Array(slots.length * 2);
    this.hashes = new Int32Array(slots.length * 2);
    this.keys = new Array<string>(slots.length * 2).fill('');
    for (let i = 0; i < slots.length; i++) if (slots[i] !== 0) this.place(keys[i], hashes[i], slots[i] - 1);
  }
}
