import json
from pathlib import Path

import pytest

from shared_data import shared_path


@pytest.fixture(scope="session")
def bundled():
    """The bundled all-MiniLM-L6-v2 wrapped once per session (fp32, CPU)."""
    from fastmteb.encoding import load_encoder

    return load_encoder(device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def sentence_transformer(bundled):
    return bundled.sentence_transformer


def _jsonl(path: Path, limit: int) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


@pytest.fixture(scope="session")
def real_texts() -> list[str]:
    """STSBenchmark sentences plus SciFact documents (title + text as mteb builds them), adversarial extras."""
    texts = [row["sentence1"] for row in _jsonl(shared_path("STSBenchmark", "test.jsonl"), 60)]
    for row in _jsonl(shared_path("SciFact", "corpus.jsonl"), 8):
        title, body = row.get("title") or "", row["text"]
        texts.append((title + " " + body).strip() if title else body.strip())
    texts += ["", " ", "word", "ünïcödé — 汉字 ☃ emoji 🤖", "a " * 2000, "\n\ttabs\n", texts[0]]
    return texts
