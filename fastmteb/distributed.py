"""Scale-out over processes with ``torch.distributed`` (launched by ``torchrun``).

    torchrun --nproc-per-node 8 -m fastmteb run -m MODEL -b "MTEB(eng, v2)"

Every rank loads and prepares every task and builds the same text pool. Encoding: the token-budget
batches of the whole pool are planned once, exactly as in one process, and batch ``i`` is encoded
by rank ``i % world_size``; the rows are all-gathered, so every rank holds the full matrix and
every vector was computed in the same batch as in a one-process run (hence bitwise equal).
Retrieval: rank ``r`` searches its contiguous corpus shard and the exact global top-k is merged
from the local ones (``fastmteb.kernels.sharded_topk``, to which the runner hands this context
as its ``Communicator``). Rank 0 writes the files.

``Distributed`` is the context (rank, world size, backend) with the few collectives fastmteb needs.
The runner builds it once and hands it to what needs it: the text pool (``communicator=``) and
the retrieval search (``PreparedRun.communicator``). ``SINGLE_PROCESS`` is the one-process
context, whose collectives are identities.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Union

import numpy as np
import torch

logger = logging.getLogger("fastmteb")

ArrayLike = Union[np.ndarray, torch.Tensor]
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
BACKENDS = ("nccl", "gloo")
TIMEOUT_VARIABLE = "FASTMTEB_DIST_TIMEOUT"  # seconds a rank may wait in one collective
DEFAULT_TIMEOUT_SECONDS = 3 * 3600  # rank 0 scores the non-retrieval tasks while the others wait

_owned_group = False  # True once fastmteb initialised the default process group itself


class DistributedSetupError(ValueError):
    """The distributed environment is inconsistent or was asked for and is missing."""


class PeerRankError(RuntimeError):
    """Another rank failed in a step all ranks take together; the message names rank and error."""


def launched_by_torchrun() -> bool:
    """True when the torchrun variables are set and ``WORLD_SIZE > 1``."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def launch_rank() -> int:
    """This process's ``RANK`` when launched by torchrun, else 0 (no process group needed)."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def shard_bounds(n: int, world_size: int) -> np.ndarray:
    """Offsets ``[world_size + 1]`` of contiguous shards of ``n`` rows; shard ``r`` is
    ``[b[r], b[r+1])``, the first ``n % world_size`` shards one row longer (``np.array_split``)."""
    base, extra = divmod(int(n), int(world_size))
    sizes = np.full(world_size, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


@dataclass(frozen=True)
class Distributed:
    """Rank, world size and backend of this process, with the collectives fastmteb uses.

    ``Distributed()`` is the single-process context (every collective is the identity).
    ``encoder_device`` is the device this rank encodes on (``cuda:LOCAL_RANK`` under torchrun
    on GPUs); ``comm_device`` the one collective tensors go through (CUDA for NCCL, CPU for gloo).
    ``wait_group``: with NCCL, a gloo group over the same ranks for barriers and pickled-object
    collectives. Ranks often wait there for a long time (while rank 0 scores and writes); an NCCL
    barrier waits by polling, a GPU kernel and a CPU thread busy the whole time, while gloo
    blocks on a socket.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    encoder_device: str | None = None
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    wait_group: Any = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- set-up -----------------------------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        *,
        device: str | torch.device | None = None,
        backend: str | None = None,
        enabled: bool | None = None,
    ) -> Distributed:
        """The context of this process.

        ``enabled=None`` (auto): distributed when launched by torchrun (``WORLD_SIZE > 1``, with
        ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), unless the caller already
        initialised a process group of its own (then fastmteb stays out of it: pass
        ``enabled=True`` to shard over it, and call from every rank). ``enabled=False``: single.
        ``device``: the requested encoder device; ``None`` or ``"cuda"`` become ``cuda:LOCAL_RANK``
        when CUDA is available. ``backend``: "nccl" when encoding on CUDA, else "gloo".
        """
        global _owned_group
        import torch.distributed as dist

        if enabled is False:
            return cls(encoder_device=_device_text(device))
        initialised = dist.is_available() and dist.is_initialized()
        if not launched_by_torchrun() and not initialised:
            if enabled:
                raise DistributedSetupError(
                    "distributed=True but this process was not launched by torchrun (RANK, "
                    "WORLD_SIZE>1, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not all set); run "
                    "`torchrun --nproc-per-node N -m fastmteb run ...`"
                )
            return cls(encoder_device=_device_text(device))
        if initialised and not _owned_group and not enabled:
            logger.info(
                "torch.distributed is initialised by the caller; evaluating in this process "
                "alone (pass distributed=True and call from every rank to shard)"
            )
            return cls(encoder_device=_device_text(device))
        if backend is not None and backend not in BACKENDS:
            raise DistributedSetupError(f"dist backend {backend!r} is not one of {BACKENDS}")
        if initialised:
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        encode_on = _rank_device(device, local_rank)
        if initialised:
            backend = str(dist.get_backend())
        else:
            backend = backend or ("nccl" if encode_on.type == "cuda" else "gloo")
        if backend == "nccl" and encode_on.type != "cuda":
            raise DistributedSetupError(
                f"the nccl backend needs CUDA but this rank encodes on {encode_on}; use "
                "--dist-backend gloo or a CUDA device"
            )
        if encode_on.type == "cuda":
            torch.cuda.set_device(encode_on)
        comm_device = encode_on if backend == "nccl" else torch.device("cpu")
        if not initialised:
            options: dict[str, Any] = {"timeout": _timeout()}
            if backend == "nccl":
                options["device_id"] = encode_on
            dist.init_process_group(backend=backend, **options)
            _owned_group = True
            atexit.register(_destroy_owned_group)
            logger.info("torch.distributed: rank %d of %d (%s)", rank, world, backend)
        wait_group = dist.new_group(backend="gloo", timeout=_timeout()) if backend == "nccl" else None
        return cls(rank, world, local_rank, backend, str(encode_on), comm_device, wait_group)

    # -- collectives ------------------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        if self.is_distributed:
            import torch.distributed as dist

            if self.wait_group is not None:
                dist.barrier(group=self.wait_group)
            elif self.backend == "nccl":
                dist.barrier(device_ids=[self.comm_device.index])
            else:
                dist.barrier()

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank (pickled)."""
        if not self.is_distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        if self.wait_group is not None:
            dist.broadcast_object_list(box, src=src, group=self.wait_group)
        else:
            dist.broadcast_object_list(box, src=src, device=self.comm_device)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (pickled)."""
        if not self.is_distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.wait_group)
        return out

    def check_all(self, error: BaseException | None, what: str) -> None:
        """Call on every rank after a step that may fail on some: re-raises this rank's
        ``error``, or raises ``PeerRankError`` when another rank failed, so that no rank goes on
        to a collective the failed one never reaches."""
        reports = self.all_gather_object(
            None if error is None else f"{type(error).__name__}: {error}"
        )
        if error is not None:
            raise error
        for rank, report in enumerate(reports):
            if report is not None:
                raise PeerRankError(f"rank {rank} failed while {what}: {report}")

    def all_true(self, mask: np.ndarray) -> np.ndarray:
        """Elementwise AND of a boolean array over the ranks (same shape on every rank)."""
        if not self.is_distributed:
            return np.asarray(mask, dtype=bool)
        import torch.distributed as dist

        tensor = torch.from_numpy(np.asarray(mask, dtype=np.uint8).copy()).to(self.comm_device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return tensor.cpu().numpy().astype(bool)

    def all_gather_rows(self, rows: ArrayLike) -> list[ArrayLike]:
        """Every rank's ``rows`` (numbers of rows may differ; trailing dims and dtype agree
        among the non-empty ones), in rank order, as numpy for numpy input, else tensors on
        ``rows``' device."""
        if not self.is_distributed:
            return [rows]
        import torch.distributed as dist

        numpy_in = not isinstance(rows, torch.Tensor)
        home = rows.device if not numpy_in else torch.device("cpu")
        tensor = _as_tensor(rows)
        shapes = self.all_gather_object((tuple(tensor.shape), str(tensor.dtype)))
        filled = [(shape, dtype) for shape, dtype in shapes if shape[0] > 0]
        trailing, dtype_name = filled[0] if filled else shapes[self.rank]
        trailing = tuple(trailing[1:])
        dtype = getattr(torch, dtype_name.replace("torch.", ""))
        longest = max(shape[0] for shape, _ in shapes)
        if longest == 0:
            return [rows[:0] for _ in range(self.world_size)]
        padded = torch.zeros((longest, *trailing), dtype=dtype, device=self.comm_device)
        if tensor.shape[0]:
            padded[: tensor.shape[0]] = tensor.to(self.comm_device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        out = [part[: shape[0]] for part, (shape, _) in zip(parts, shapes)]
        if numpy_in:
            return [part.cpu().numpy() for part in out]
        return [part.to(home) for part in out]


def _device_text(device: str | torch.device | None) -> str | None:
    return None if device is None else str(device)


def _rank_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    """``None``/``"cuda"`` -> ``cuda:LOCAL_RANK`` when CUDA is available; others as given."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", local_rank)
    return resolved


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_VARIABLE)
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        raise DistributedSetupError(
            f"{TIMEOUT_VARIABLE}={raw!r} is not a number of seconds"
        ) from None
    return timedelta(seconds=seconds)


def _destroy_owned_group() -> None:
    global _owned_group
    import torch.distributed as dist

    if _owned_group and dist.is_initialized():
        dist.destroy_process_group()
    _owned_group = False


# -- the process-wide current context ------------------------------------------------------------

#: The single-process context: what a run or a text pool uses without torchrun.
SINGLE_PROCESS = Distributed()
