/**
 * The infections of docs/INFECTIONS.md as the trace generator applies them.
 * The signatures live in src/sim/infections.ts, shared with the simulated
 * fleet, so the benchmark measures what the demo shows.
 */
import { INFECTION_TYPES, type InfectionType } from '../../src/sim/infections.js';

export { EXPECTED_DIAGNOSIS, infectionEffect, NO_EFFECT, providerEffect, type Effect } from '../../src/sim/infections.js';

export const INFECTIONS = INFECTION_TYPES;
export type InfectionKind = InfectionType;
export type Magnitude = 'blatant' | 'subtle';

/** Blatant faults use m ∈ [5, 12], subtle m ∈ [1.5, 2] (docs/INFECTIONS.md). */
export const MAGNITUDE_RANGE: Record<Magnitude, [number, number]> = { blatant: [5, 12], subtle: [1.5, 2] };
