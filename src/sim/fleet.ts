import { AGENT_TYPES, SimAgent, type AgentType, type Profile } from './agents.js';
import type { Random } from './random.js';

/** The seed's real-world agent names, models and MCP server presets. */
export const AGENT_NAMES = ['VPN', 'Docker', 'Slack', 'Postgres', 'Network', 'GitHub', 'Kubernetes', 'Nginx', 'Redis', 'Elasticsearch', 'Notion', 'Figma', 'Linear', 'SendGrid', 'Brave Search'] as const;
export const MODELS = ['GPT-5', 'Claude Sonnet 4', 'Claude Opus 4', 'Gemini 2.0', 'GPT-4o', 'Claude Sonnet 3.5'] as const;
export const MCP_SERVER_PRESETS: readonly (readonly string[])[] = [
  ['filesystem', 'github', 'slack'],
  ['postgres', 'web-fetch', 'notion'],
  ['google-drive', 'figma', 'linear'],
  ['brave-search', 'fetch', 'memory'],
  ['filesystem', 'postgres', 'sendgrid'],
  ['github', 'slack', 'notion'],
];

/** Per-type normal behaviour, after the seed's agent classes. */
function profileFor(type: AgentType, rnd: Random): Profile {
  const base: Profile = {
    latency_ms: rnd.int(200, 400),
    tokens: rnd.int(1000, 1500),
    input_share: 0.65,
    tool_calls: rnd.int(2, 4),
    latency_sigma: rnd.uniform(0.2, 0.3),
    token_sigma: rnd.uniform(0.18, 0.28),
    error_rate: 0.02,
    retry_rate: 0.08,
  };
  switch (type) {
    case 'Research':
      return { ...base, tokens: rnd.int(1200, 1600), tool_calls: rnd.int(3, 5) };
    case 'Data':
      return { ...base, latency_ms: rnd.int(150, 300), tokens: rnd.int(800, 1200) };
    case 'Analytics':
      return { ...base, latency_ms: rnd.int(300, 500), tool_calls: rnd.int(4, 6) };
    case 'Coordinator':
      return { ...base, tokens: rnd.int(1000, 1400), tool_calls: rnd.int(5, 8) };
  }
}

/** Agent i gets the seed's name, type, model and MCP preset for position i (ids stay unique past 15 agents). */
export function createFleet(count: number, rnd: Random): SimAgent[] {
  const agents: SimAgent[] = [];
  for (let i = 0; i < count; i++) {
    const name = AGENT_NAMES[i % AGENT_NAMES.length];
    const round = Math.floor(i / AGENT_NAMES.length);
    const id = round === 0 ? name.replace(/ /g, '-') : `${name.replace(/ /g, '-')}-${round + 1}`;
    const type = AGENT_TYPES[i % AGENT_TYPES.length];
    agents.push(new SimAgent(id, type, MODELS[i % MODELS.length], MCP_SERVER_PRESETS[i % MCP_SERVER_PRESETS.length], profileFor(type, rnd)));
  }
  return agents;
}
