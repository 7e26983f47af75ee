// The sample agents, built with the builder; `generate.ts` prints them to samples/*.mlir.
import { AgentGraphBuilder, tensorType } from '../src/index.js';

export const SAMPLE_MODELS = ['tiny-llama', 'llama3-8b', 'llama3-70b'] as const;

/**
 * One second of 16 kHz audio in, speech out; the LLM may search the web up to three times. Best
 * effort: a spoken answer that comes late beats none, so a host too slow for the SLA still deploys it.
 */
export function voiceAgent(model: string): AgentGraphBuilder {
  const research = new AgentGraphBuilder('research')
    .input('draft')
    .llm('think', { model, promptTokens: 512, maxTokens: 64 })
    .tool('search', 'web_search', { latency_ms: 350 })
    .llm('refine', { model, promptTokens: 1024, maxTokens: 128 })
    .output('next')
    .edge('draft', 'think')
    .edge('think', 'search')
    .edge('search', 'refine')
    .edge('refine', 'next');
  return new AgentGraphBuilder('voice_agent', { sla_ms: 2000, sla_policy: 'best_effort' })
    .input('audio', tensorType([16000], 'f32'))
    .stt('transcribe', 'whisper-small', { model_params: 244e6, sample_rate: 16000 })
    .privacyFilter('redact', { engine: 'presidio', model_params: 110e6 })
    .loop('research', research, { maxIterations: 3 })
    .tts('speak', 'piper', 48000, { model_params: 60e6 })
    .output('reply')
    .edge('audio', 'transcribe')
    .edge('transcribe', 'redact')
    .edge('redact', 'research')
    .edge('research', 'speak')
    .edge('speak', 'reply');
}

/** input → memory.load → llm.call → tool search → tool calculator → memory.store. */
export function toolAgent(model: string): AgentGraphBuilder {
  return new AgentGraphBuilder('tool_agent', { sla_ms: 5000 })
    .input('query')
    .memoryLoad('recall', 'user_profile', { bytes: 4096 })
    .llm('plan', { model, promptTokens: 512, maxTokens: 256, attrs: { placement: 'gpu' } })
    .tool('search', 'web_search', { latency_ms: 350 })
    .tool('calc', 'calculator', { latency_ms: 5 })
    .memoryStore('remember', 'user_profile')
    .output('answer')
    .edge('query', 'recall')
    .edge('query', 'plan')
    .edge('recall', 'plan')
    .edge('plan', 'search')
    .edge('search', 'calc')
    .edge('calc', 'remember')
    .edge('calc', 'answer');
}

export function sampleFiles(): { file: string; builder: AgentGraphBuilder }[] {
  return SAMPLE_MODELS.flatMap((m) => [
    { file: `voice-agent.${m}.mlir`, builder: voiceAgent(m) },
    { file: `tool-agent.${m}.mlir`, builder: toolAgent(m) },
  ]);
}
