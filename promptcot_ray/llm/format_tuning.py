"""Teach the tiny offline model the project's reply formats (a test and demo fixture).

A random model's replies never parse, so concept extraction, judging and rationale writing
would only ever exercise their rejection paths. A few hundred steps of plain supervised
training on examples built by the project's own prompt builders and format functions make
the tiny model answer in the right shape (its content stays meaningless), so every stage
of every job can run end to end offline. This is not the method's generator training: that
is the DeepSpeed `train` job.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from promptcot_ray.concepts.pool import default_concept_lists_path, load_concept_lists
from promptcot_ray.parsing import verdict_from_ratings
from promptcot_ray.prompts import concepts as concept_prompt
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.prompts import judge as judge_prompt
from promptcot_ray.prompts import rationale as rationale_prompt
from promptcot_ray.prompts import solve as solve_prompt
from promptcot_ray.records import CRITERIA, LEVELS

logger = logging.getLogger(__name__)

TOY_PROBLEMS = (
    "Let n be a positive integer such that n^2 + 1 divides 2^n + 1. Find the least such n > 1.",
    "In triangle ABC, AB = 13, BC = 14 and CA = 15. Find the radius of the inscribed circle.",
    "How many subsets of {1, 2, ..., 10} contain no two consecutive integers?",
    "Find all real x with sqrt(x + 3) + sqrt(x - 1) = 4.",
    "A fair die is rolled until a six appears. Find the expected number of rolls.",
    "Prove that for positive reals a, b, c with abc = 1, a^2 + b^2 + c^2 >= a + b + c.",
)
TOY_ANSWERS = ("3", "4", "144", "\\frac{9}{2}", "6", "1")  # one per toy problem (not checked)
TOY_REASONING = (
    "First restate what is asked. Try small cases, spot the pattern, then prove it holds.",
    "Set up the equation, simplify both sides, and check the candidate against the conditions.",
)
TOY_RATIONALES = (
    "Start from the first concept, ask which quantity it controls, then use the second to "
    "pin that quantity down; the level asks for one non-obvious step, so hide the key idea.",
    "Pick a configuration where two of the concepts meet naturally, then choose numbers that "
    "make the answer an integer and check that no shortcut trivialises it.",
)
RATING_WEIGHTS = (6, 3, 1)  # perfect, acceptable, bad: judges mostly approve, not always
# Share of taught judgements that give every criterion the same rating. Independent ratings
# alone make "all five perfect" rare (0.6^5), so demos and tests would accept nothing.
SAME_RATING_SHARE = 0.8


def _example(task: str, rng: random.Random, lists: list[list[str]]) -> tuple[list[dict], str]:
    concepts = rng.choice(lists)[:5]
    level, problem = rng.choice(LEVELS), rng.choice(TOY_PROBLEMS)
    rationale = rng.choice(TOY_RATIONALES)
    if task == "solve":
        index = rng.randrange(len(TOY_PROBLEMS))
        reply = (
            f"<think>\n{rng.choice(TOY_REASONING)}\n</think>\n\n"
            f"The answer is $\\boxed{{{TOY_ANSWERS[index]}}}$."
        )
        return solve_prompt.build_solve_messages(TOY_PROBLEMS[index]), reply
    if task == "concepts":
        reply = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(concepts)) + f"\nLevel: {level}"
        return concept_prompt.build_concept_messages(problem, 5), reply
    if task == "rationale":
        msgs = rationale_prompt.build_rationale_messages(problem, concepts, level)
        return (
            msgs,
            f"{generator_prompt.RATIONALE_BEGIN}\n{rationale}\n{generator_prompt.RATIONALE_END}",
        )
    if task == "generator":
        msgs = generator_prompt.build_generator_messages(concepts, level)
        return msgs, generator_prompt.format_completion(rationale, problem)
    ratings = _ratings(rng)
    reply_format = "schema" if task == "judge_json" else "free_text"
    msgs = judge_prompt.build_judge_messages(concepts, level, rationale, problem, reply_format)
    if reply_format == "schema":
        return msgs, judge_prompt.format_judgement_json(ratings, verdict_from_ratings(ratings))
    return msgs, judge_prompt.format_judgement(ratings, verdict_from_ratings(ratings))


def _ratings(rng: random.Random) -> dict[str, str]:
    """Five taught ratings: mostly one rating for the whole problem, as judges tend to."""
    if rng.random() < SAME_RATING_SHARE:
        rating = rng.choices(("perfect", "acceptable", "bad"), RATING_WEIGHTS)[0]
        return dict.fromkeys(CRITERIA, rating)
    return {c: rng.choices(("perfect", "acceptable", "bad"), RATING_WEIGHTS)[0] for c in CRITERIA}


def format_examples(n: int, seed: int = 0) -> list[tuple[list[dict], str]]:
    """`n` (chat messages, reply) pairs cycling through the six reply formats (the judge
    both free-text and JSON)."""
    rng = random.Random(seed)
    lists = load_concept_lists(default_concept_lists_path())
    tasks = ("concepts", "rationale", "generator", "judge", "judge_json", "solve")
    return [_example(tasks[i % len(tasks)], rng, lists) for i in range(n)]


def _encode(tokenizer, messages: list[dict], reply: str) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    reply_ids = tokenizer(reply + tokenizer.eos_token, add_special_tokens=False).input_ids
    return prompt_ids + reply_ids, [-100] * len(prompt_ids) + reply_ids  # loss on reply only


def teach_formats(
    model_dir: str | Path,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
) -> float:
    """Train the model in `model_dir` in place on format examples; return the final loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    encoded = [_encode(tokenizer, m, r) for m, r in format_examples(64, seed)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    model.train()
    loss_value = float("nan")
    for step in range(steps):
        batch = rng.sample(encoded, min(batch_size, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss_value = loss.item()
        if step % 50 == 0 or step == steps - 1:
            logger.info("format tuning step %d/%d loss %.3f", step + 1, steps, loss_value)
    model.save_pretrained(model_dir, safe_serialization=True)
    return loss_value


def generator_sft_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` generator SFT rows shaped like rationales/data (prompt = JSON chat messages).

    Lets the train job be exercised without running concepts and rationales first.
    """
    import json

    rng = random.Random(seed)
    lists = load_concept_lists(default_concept_lists_path())
    rows = []
    for _ in range(n):
        messages, reply = _example("generator", rng, lists)
        rows.append({"prompt": json.dumps(messages), "completion": reply})
    return rows
