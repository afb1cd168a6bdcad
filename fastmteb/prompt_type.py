"""The prompt-type vocabulary shared by task metadata (which texts are queries, which documents)
and the encoders (which prompt they apply): mteb's ``PromptType`` values."""

from __future__ import annotations

from typing import Literal

PromptType = Literal["query", "document"]
