"""Conversational queries (a list of turns) flattened to the one string mteb embeds.

mteb 2.26 (``mteb/_create_dataloaders.py``): when a retrieval task's query ``text`` is a list
(``_prepare_dataset`` tests the first row), every query goes through
``_convert_conv_history_to_query``:

- a list of strings (tested on the first turn) is joined with ``"; "``;
- a list of ``{"role", "content"}`` dicts becomes ``"; ".join(f"{role}: {content}")``;
- when the query row has an ``instruction`` field, it is put *in front*:
  ``f"{instruction} {conversation}"`` (plain-text queries instead get ``" " + instruction``
  appended: see ``retrieval._query_texts``). The key's presence decides, so mteb would format a
  null instruction as ``"None"``, but its collate function then fails on the null
  (``Found None in batch for key 'instruction'``): a null instruction is an error here too.

The model then reads that string as the query text (mteb also passes the turns in a
``conversation`` batch field, which text encoders ignore).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastmteb.tasks._common import TaskTypeError

_NO_INSTRUCTION = object()


def is_conversation(text: Any) -> bool:
    """True for a query mteb treats as a conversation (its ``isinstance(text, list)`` test)."""
    return isinstance(text, list)


def conversation_to_text(
    task: str, turns: Sequence[Any], instruction: Any = _NO_INSTRUCTION
) -> str:
    """One conversation as mteb's ``_convert_conv_history_to_query`` writes it (see the module doc).

    ``instruction`` is left out when the query set has no instruction field. Data mteb rejects (an
    empty conversation, turns mixing strings and dicts, a dict without ``role``/``content``, a null
    instruction) raises ``TaskTypeError`` naming the task.
    """
    if not isinstance(turns, list) or not turns:
        raise TaskTypeError(
            f"task {task!r}: a conversational query must be a non-empty list of turns, got {turns!r:.80}; "
            "mteb fails on it too: drop the query or give it at least one turn"
        )
    if isinstance(turns[0], str):
        if not all(isinstance(turn, str) for turn in turns):  # mteb: fails in str.join
            raise TaskTypeError(
                f"task {task!r}: conversation {turns!r:.80} mixes strings and other turns"
            )
        text = "; ".join(turns)
    elif isinstance(turns[0], dict):
        parts = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
                raise TaskTypeError(
                    f"task {task!r}: turn {i} of conversation {turns!r:.80} is not a dict with 'role' and "
                    "'content' (mteb rejects it too)"
                )
            parts.append(f"{turn['role']}: {turn['content']}")
        text = "; ".join(parts)
    else:
        raise TaskTypeError(
            f"task {task!r}: conversation turns must be strings or {{'role', 'content'}} dicts, got "
            f"{type(turns[0]).__name__}"
        )
    if instruction is not _NO_INSTRUCTION:
        if instruction is None:
            raise TaskTypeError(
                f"task {task!r}: conversational query {text[:60]!r} has a null instruction; mteb fails on it "
                "(Found None in batch for key 'instruction'): give every query an instruction string"
            )
        text = f"{instruction} {text}"
    return text


def conversation_texts(
    task: str, conversations: Sequence[Any], instructions: Sequence[Any] | None
) -> list[str]:
    """Every query of a conversational query set, with its instruction in front when the set has them."""
    if instructions is None:
        return [conversation_to_text(task, turns) for turns in conversations]
    return [
        conversation_to_text(task, turns, instr)
        for turns, instr in zip(conversations, instructions)
    ]
