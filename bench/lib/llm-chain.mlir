// The LLM chain of the tool agent alone: one llm.call, decomposed by stitch into tokenize, prefill,
// kv.transfer, decode and detokenize. No placement hint: it runs where the planner puts it.
"agent.graph"() ({
  %query = "agent.input"() {name = "query"} : () -> !agent.text
  %text = "llm.call"(%query) {max_tokens = 64 : i64, model = "llama3-8b", prompt_tokens = 128 : i64} : (!agent.text) -> !agent.text
  "agent.output"(%text) {name = "answer"} : (!agent.text) -> ()
}) {sla_ms = 600000 : i64, sym_name = "llm_chain"} : () -> ()
