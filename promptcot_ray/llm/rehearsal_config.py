"""Settings of the rehearsal engine: which shares of replies take which branch, and how long
replies are said to be.

Kept apart from `rehearsal.py` (which builds replies) so `config.py` can import it without
pulling in prompt builders; it depends on pydantic only.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What rows record as their model when the rehearsal engine wrote them (lineage, ledger).
REHEARSAL_MODEL = "rehearsal"


class RehearsalConfig(BaseModel):
    """Shares and token counts of the rehearsal stand-in (used only with engine: rehearsal).

    Shares are drawn per row from a hash of its id, so a rerun gives the same replies and
    every branch of every stage (rejections included) runs at a predictable rate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    draft_unparseable_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Drafts that do not parse (the problem tags are missing); half of them "
        "are also cut off at max_tokens, so both the parse and the truncation reasons occur.",
    )
    judge_perfect_share: float = Field(
        0.6, ge=0, le=1, description="Judge replies rating every criterion Perfect."
    )
    judge_acceptable_share: float = Field(
        0.2, ge=0, le=1, description="Judge replies with one criterion Acceptable, none Bad."
    )
    judge_bad_share: float = Field(0.1, ge=0, le=1, description="Judge replies with a Bad.")
    judge_unparseable_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Judge replies without ratings (free text) or, in JSON mode, JSON cut "
        "off mid-object. The four judge shares must sum to 1.",
    )
    teacher_agreement_share: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Problems whose teacher samples all give the same answer; the others' "
        "samples disagree, so majority voting yields low-confidence or no labels.",
    )
    cutoff_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Solutions cut off at max_tokens (an open think block, no answer).",
    )
    eval_correct_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Evaluation answers that equal the item's reference answer.",
    )
    engine_error_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Rows failing as an engine error would (__inference_error__ set, "
        "postprocess skipped); keep it under the jobs' max_error_fraction.",
    )
    chars_per_input_token: float = Field(
        4.0, gt=0, description="Prompt characters per reported input token."
    )
    concept_tokens: int = Field(60, ge=1, description="Typical tokens of a concept list.")
    rationale_tokens: int = Field(300, ge=1, description="Typical tokens of a rationale.")
    draft_tokens: int = Field(700, ge=1, description="Typical tokens of a generator draft.")
    judge_tokens: int = Field(350, ge=1, description="Typical tokens of a judge reply.")
    solution_tokens: int = Field(
        3000, ge=1, description="Typical tokens of a teacher solution or an evaluated answer."
    )
    token_jitter: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="Each reply's token count varies by up to this share around its typical "
        "count (capped below max_tokens unless the reply is cut off).",
    )

    @model_validator(mode="after")
    def _check_judge_shares(self) -> RehearsalConfig:
        shares = (
            self.judge_perfect_share,
            self.judge_acceptable_share,
            self.judge_bad_share,
            self.judge_unparseable_share,
        )
        if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise ValueError(
                f"rehearsal judge shares (perfect, acceptable, bad, unparseable) = {shares} "
                f"sum to {sum(shares):.3f}; make them sum to 1"
            )
        return self
