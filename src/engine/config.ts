/** Tunables of the detection and healing engine. Every field has a default; see docs/DETECTION.md for the reasoning. */
export interface EngineConfig {
  /** EWMA span in samples (α = 2/(span+1)). */
  ewmaSpan: number;
  /** Samples before an agent's baseline is trusted. */
  minSamples: number;
  /** Per-sample deviation (σ) above which a metric is called elevated and listed as an anomaly. */
  thresholdSigma: number;
  /** Floor on σ in log space (≈ relative spread): a metric that was constant can still deviate. */
  sigmaFloor: number;
  /** CUSUM allowance k and decision interval h, in σ: evidence must accumulate past h to confirm. */
  cusumK: number;
  cusumH: number;
  /** Decision interval for the retry/error rate CUSUMs (log-likelihood ratio units). */
  rateCusumH: number;
  /** Samples in the window used to report rate deviations. */
  rateWindow: number;
  /** Floors on the baseline error probability and retries per task, so a spotless agent is not alarmed by one failure. */
  errorRateFloor: number;
  retryRateFloor: number;
  /** max_deviation at or above which healing waits for a human. */
  deviationRequiringApproval: number;
  /** Consecutive normal samples in probation before an agent is declared healed. */
  probationSamples: number;
  /** Normal samples with a new prompt hash before it is adopted as the baseline prompt. */
  promptAdoptSamples: number;
  /**
   * Fleet correlation: agents sharing a model/provider that are slow or failing with nothing else wrong
   * (no token, tool, cost or prompt evidence), all at once, are one provider incident. The window (s)
   * bounds how long an agent's last report keeps it active; an incident needs at least `fleetMinAgents`
   * such agents, at least `fleetMinFraction` of the group's active agents, and most of the agents that
   * reported since the trouble began strained (docs/DETECTION.md, "Provider incidents").
   */
  fleetWindowSeconds: number;
  fleetMinAgents: number;
  fleetMinFraction: number;
  /** How long an agent with only provider-type anomalies is held (not quarantined) waiting for peers to corroborate. */
  fleetHoldSeconds: number;
  /** Pause between healing steps so an operator can follow them (seconds). */
  healingStepDelaySeconds: number;
  /**
   * In replay, a failed probation waits for normal behaviour instead of escalating (the recording cannot
   * react to actions), and an agent's latest sample is the caller's record, not a copy (nothing reads it).
   */
  replayMode: boolean;
  /** In replay (and tests) severe infections are approved automatically. */
  autoApprove: boolean;
}

export const DEFAULT_ENGINE_CONFIG: Readonly<EngineConfig> = Object.freeze({
  ewmaSpan: 50,
  minSamples: 15,
  thresholdSigma: 2.5,
  sigmaFloor: 0.05,
  cusumK: 1.0,
  cusumH: 8.0,
  rateCusumH: 9.0,
  rateWindow: 10,
  errorRateFloor: 0.02,
  retryRateFloor: 0.05,
  deviationRequiringApproval: 5.0,
  probationSamples: 5,
  promptAdoptSamples: 20,
  fleetWindowSeconds: 120,
  fleetMinAgents: 3,
  fleetMinFraction: 0.3,
  fleetHoldSeconds: 30,
  healingStepDelaySeconds: 1,
  replayMode: false,
  autoApprove: false,
});

export function engineConfig(overrides: Partial<EngineConfig> = {}): EngineConfig {
  return { ...DEFAULT_ENGINE_CONFIG, ...overrides };
}
