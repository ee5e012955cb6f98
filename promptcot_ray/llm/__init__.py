"""The engine layer: every LLM call in the project goes through here (vLLM via ray.data.llm)."""
