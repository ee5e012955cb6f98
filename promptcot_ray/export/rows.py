"""Export rows built column-wise with pyarrow compute (no Python loop over rows).

Chat messages are `list<struct<role, content>>` columns, the shape `datasets` shows as a list
of {"role", "content"} dicts and verl's RLHFDataset hands to `apply_chat_template`.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from promptcot_ray import records as R

# large_string: a column of 300k long-CoT solutions passes the 2 GiB of 32-bit string offsets
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.large_string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)
ABILITY = "math"
REWARD_STYLE = "rule"  # verl: the reward is computed by a rule from ground_truth
# Lineage kept with every exported problem (README "What a run leaves behind").
PROBLEM_LINEAGE = (*R.LINEAGE_COLUMNS, "combination_id", "level", "concepts", "round")


def solve_text(problem: pa.ChunkedArray, instruction: str) -> pa.ChunkedArray:
    """The solve prompt's user turn, as prompts.solve.build_solve_messages writes it."""
    trimmed = pc.utf8_trim_whitespace(problem)
    return pc.binary_join_element_wise(trimmed, pa.scalar(instruction), "\n\n")


def messages(*turns: tuple[str, pa.ChunkedArray]) -> pa.ListArray:
    """One chat per row from (role, content column) turns, in that order."""
    n, k = len(turns[0][1]), len(turns)
    roles = pa.concat_arrays([pa.repeat(pa.scalar(role), n) for role, _ in turns])
    contents = pa.concat_arrays(
        [pa.chunked_array(c).cast(pa.large_string()).combine_chunks() for _, c in turns]
    )
    # turn t of row i sits at t * n + i: take them row by row
    order = pa.array((np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel())
    flat = pa.StructArray.from_arrays(
        [roles.take(order), contents.take(order)], fields=list(MESSAGE_TYPE)
    )
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, type=MESSAGES_TYPE)


def concat_chats(first: pa.ListArray, second: pa.ListArray) -> pa.ListArray:
    """Row-wise list concatenation (first[i] + second[i]), computed with numpy offsets."""
    a_len = pc.list_value_length(first).to_numpy(zero_copy_only=False)
    b_len = pc.list_value_length(second).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(a_len + b_len)]).astype(np.int32)
    a_start = np.concatenate([[0], np.cumsum(a_len)])[:-1]
    b_start = np.concatenate([[0], np.cumsum(b_len)])[:-1]
    # where each source value lands in the joined list values
    dest_a = np.repeat(offsets[:-1] - a_start, a_len) + np.arange(a_len.sum())
    dest_b = np.repeat(offsets[:-1] + a_len - b_start, b_len) + np.arange(b_len.sum())
    values = pa.concat_arrays([pc.list_flatten(first), pc.list_flatten(second)])
    order = np.empty(len(values), np.int64)
    order[np.concatenate([dest_a, dest_b]).astype(np.int64)] = np.arange(len(values))
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


def parse_messages(column: pa.ChunkedArray) -> pa.Array:
    """JSON chat-message strings -> a messages column, parsed by pyarrow's JSON reader in C.

    Each string is wrapped as {"m": ...} and the column becomes one NDJSON buffer (JSON
    strings escape newlines, so one row stays one line).
    """
    if not len(column):
        return pa.array([], MESSAGES_TYPE)
    lines = pc.binary_join_element_wise(pa.scalar('{"m":'), column, pa.scalar("}"), "")
    lines = pa.chunked_array(lines).cast(pa.large_string()).combine_chunks()
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines)
    buffer = pc.binary_join(one_list, pa.scalar("\n", pa.large_string()))[0].as_buffer()
    schema = pa.schema([("m", MESSAGES_TYPE)])
    options = pajson.ParseOptions(explicit_schema=schema)
    table = pajson.read_json(io.BytesIO(buffer.to_pybytes()), parse_options=options)
    return table["m"].combine_chunks()


def match(ids: pa.ChunkedArray, keys: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(mask over ids, positions in keys) of the ids found in keys: a vectorised join."""
    positions = pc.index_in(ids, value_set=keys.combine_chunks())
    mask = pc.is_valid(positions)
    return mask, positions.filter(mask)


def labelled_problems(problems: pa.Table, labels: pa.Table) -> pa.Table:
    """Final problems that have a confident label, with `label` and `confidence` added."""
    mask, positions = match(problems[R.ID], labels["problem_id"])
    kept = problems.filter(mask)
    picked = labels.take(positions)
    kept = kept.append_column("label", picked["label"])
    kept = kept.append_column("confidence", picked["confidence"])
    return kept.append_column("label_id", picked[R.ID])


def lineage_struct(table: pa.Table, names: tuple[str, ...]) -> pa.StructArray:
    """The named columns present in `table` as one struct column (verl's extra_info)."""
    present = [n for n in names if n in table.schema.names]
    return pa.StructArray.from_arrays([table[n].combine_chunks() for n in present], present)


def verl_table(labelled: pa.Table, data_source: str, instruction: str) -> pa.Table:
    """verl RL rows: prompt (chat), data_source, ability, reward_model, extra_info."""
    n = labelled.num_rows
    prompt = messages(("user", solve_text(labelled["problem"], instruction)))
    reward = pa.StructArray.from_arrays(
        [pa.repeat(pa.scalar(REWARD_STYLE), n), labelled["label"].combine_chunks()],
        ["style", "ground_truth"],
    )
    extra = labelled.append_column("split", pa.repeat(pa.scalar("train"), n))
    extra = extra.append_column("index", pa.array(range(n), pa.int64()))
    extra = extra.append_column("question", labelled["problem"])
    names = ("split", "index", "question", *PROBLEM_LINEAGE, "label_id", "confidence")
    return pa.table(
        {
            "data_source": pa.repeat(pa.scalar(data_source), n),
            "prompt": prompt,
            "ability": pa.repeat(pa.scalar(ABILITY), n),
            "reward_model": reward,
            "extra_info": lineage_struct(extra, names),
        }
    )


def openrlhf_table(labelled: pa.Table, instruction: str) -> pa.Table:
    """OpenRLHF prompt rows: `input` (the user turn; --apply_chat_template wraps a string as
    one user message) and `label` (passed to the reward function with --label_key label)."""
    return pa.table(
        {
            "input": solve_text(labelled["problem"], instruction),
            "label": labelled["label"],
            R.ID: labelled[R.ID],
            "level": labelled["level"],
            "confidence": labelled["confidence"],
        }
    )


def sft_table(sft: pa.Table) -> pa.Table:
    """The students' SFT rows as one chat each: the solve prompt, then the teacher's solution."""
    chat = concat_chats(parse_messages(sft["prompt"]), messages(("assistant", sft["completion"])))
    keep = (*R.LINEAGE_COLUMNS, "problem_id", "solution_id", "label", "tokens_out")
    return pa.table({"messages": chat, **{c: sft[c] for c in keep}})
