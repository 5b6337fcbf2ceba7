/** @agent-immune/sdk — report agent vitals to Agent Immune and act on its healing directives. See docs/AGENTS.md. */
export { ImmuneReporter, type ImmuneReporterOptions, type ReporterStats } from './reporter.js';
export { ImmuneSdkError, QuarantinedError, type SdkErrorKind } from './errors.js';
export { CONTAINED_STATUSES, isContained, type AgentStatus, type Directive, type DirectiveResult, type HealingAction } from './status.js';
export { instrumentOpenAI, uninstrumentOpenAI, errorTypeOf, type InstrumentOpenAIOptions, type ModelPrice, type OpenAILike, type VitalsSink } from './openai.js';
export { systemPromptHash } from './prompt-hash.js';
export { verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';
export type { VitalsReport, VitalsRecord } from './vitals.js';
