"""Chat prompts for each LLM stage: concept extraction, rationale writing, generation, judging.

Each module exposes `VERSION` (written into rows as `prompt_version`) and a builder that
returns OpenAI-style chat messages; the matching reply parsers live in `parsing/`.
"""
