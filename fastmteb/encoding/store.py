"""Embedding storage past a memory limit: the pool's vectors in RAM, or in a spill file on disk.

``EmbeddingStore`` holds ``[n_rows, dim]`` vectors. Without a limit (the default) ``TextPool``
does not use it at all and keeps one float32 ndarray. With ``max_embedding_memory`` (bytes) the
store keeps the vectors in RAM while ``n_rows * dim * 4 <= max_bytes`` and otherwise in a
**spill file**; slicing it then gives a ``RowView``: a lazy ``[n, dim]`` float32 matrix that is
read from disk block by block (``iter_blocks``) or as a whole (``np.asarray(view)``).

Spill file layout (plain file I/O, no pickle, no mmap): a ``.npy`` file (format 1.0) whose header
is padded to ``HEADER_BYTES`` (128) bytes, then the rows in C order as little-endian float32 or
float16 (``spill_dtype``; float16 halves the disk traffic but rounds the vectors, so scores may
then differ from an in-memory run). ``np.load(path, mmap_mode="r")`` reads it for inspection.
File name ``spill-<host>-<pid>-<random>.npy`` in the spill folder: one file per store, never
shared between processes; it is deleted when the store is closed or garbage-collected, and a
file left by a process of this host that no longer runs (a killed run) is deleted by the next
store created in that folder. Every read checks the file's size first and every short read
raises ``SpillFileError``: a truncated file is never read as zeros.

Resident memory while streaming: one block of float32 rows (``block_bytes``: a quarter of the
limit, clamped to [1 MiB, 64 MiB]) plus, for float16 files or unordered rows, one staging block
in the file's dtype. The pages read go through the page cache, which the kernel reclaims and
which is not part of the process's RSS.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import socket
import struct
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HEADER_BYTES = 128  # the .npy header, padded: rows start 128-byte aligned
SPILL_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
MIN_BLOCK_BYTES, MAX_BLOCK_BYTES = 1 << 20, 64 << 20
_WRITE_CHUNK_BYTES = 8 << 20
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")
_SPILL_NAME = re.compile(r"^spill-(?P<host>.+)-(?P<pid>[0-9]+)-[0-9a-f]+\.npy$")


class EmbeddingStoreError(ValueError):
    """A bad spill setting (size, dtype, folder): the message names it and the fix."""


class SpillFileError(EmbeddingStoreError):
    """A spill file that is truncated, foreign or already deleted: it is never read as data."""


def parse_memory_size(value: int | float | str | None) -> int | None:
    """Bytes from ``None`` (no limit), an int, or a string such as ``"2GB"``, ``"512MiB"``, ``"0"``.

    Units: B; KB/MB/GB/TB are powers of 1000; KiB/MiB/GiB/TiB and K/M/G/T powers of 1024
    (case-insensitive). ``0`` spills every vector.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise EmbeddingStoreError(f"max_embedding_memory must be a size, got {value!r}")
    if isinstance(value, (int, np.integer)):
        number, unit = float(value), ""
    elif isinstance(value, float):
        number, unit = value, ""
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if match is None or match.group(2).lower() not in _UNITS:
            raise EmbeddingStoreError(
                f"max_embedding_memory {value!r} is not a size; write bytes or a number with a "
                "unit, e.g. 268435456, '256MiB', '2GB'"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise EmbeddingStoreError(
            f"max_embedding_memory must be None, an int or a string like '2GB', "
            f"got {type(value).__name__}"
        )
    if not np.isfinite(number) or number < 0:
        raise EmbeddingStoreError(f"max_embedding_memory must be >= 0, got {value!r}")
    return int(number * _UNITS[unit])


def block_bytes_for(max_bytes: int | None) -> int:
    """Bytes of float32 rows read per block: a quarter of the limit, within [1 MiB, 64 MiB]."""
    if max_bytes is None:
        return MAX_BLOCK_BYTES
    return int(min(max(max_bytes // 4, MIN_BLOCK_BYTES), MAX_BLOCK_BYTES))


def spill_dtype(name: str | np.dtype) -> np.dtype:
    """The on-disk dtype for ``"float32"`` or ``"float16"``."""
    key = np.dtype(name).name if not isinstance(name, str) else name
    if key not in SPILL_DTYPES:
        raise EmbeddingStoreError(
            f"spill_dtype must be one of {sorted(SPILL_DTYPES)}, got {name!r}"
        )
    return SPILL_DTYPES[key]


# ---------------------------------------------------------------- the file


def _npy_header(n_rows: int, dim: int, dtype: np.dtype) -> bytes:
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": (n_rows, dim)}).encode()
    body = HEADER_BYTES - len(_NPY_MAGIC) - 2
    return _NPY_MAGIC + struct.pack("<H", body) + text.ljust(body - 1) + b"\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(folder: Path, host: str) -> None:
    """Delete spill files that this host's dead processes left behind (a killed run)."""
    for path in folder.glob("spill-*.npy"):
        match = _SPILL_NAME.match(path.name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            try:
                path.unlink()
            except OSError:
                pass


def _close_and_remove(fd: int, path: str | None, folder_created: bool) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        if folder_created:
            try:
                os.rmdir(os.path.dirname(path))  # only when empty
            except OSError:
                pass


class SpillFile:
    """A ``[n_rows, dim]`` array on disk (layout in the module docstring), read with ``preadv``."""

    def __init__(self, path: Path, fd: int, n_rows: int, dim: int, dtype: np.dtype, owned: bool,
                 folder_created: bool = False):
        self.path, self.n_rows, self.dim, self.dtype = path, n_rows, dim, dtype
        self._fd = fd
        self.owned = owned
        # an owned file goes with its last reference, also on an error path or at exit (and the
        # folder with it when this file created it and it is left empty)
        self._finalizer = weakref.finalize(
            self, _close_and_remove, fd, str(path) if owned else None, folder_created
        )

    @classmethod
    def create(cls, folder: str | os.PathLike[str], n_rows: int, dim: int,
               dtype: str | np.dtype = "float32") -> SpillFile:
        """A new zero-filled file in ``folder`` (created if needed), owned: deleted on close."""
        dtype = spill_dtype(dtype)
        folder = Path(folder)
        folder_created = not folder.is_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EmbeddingStoreError(
                f"cannot create the spill folder {folder} ({error}); pass a writable cache_dir "
                "or spill_dir"
            ) from error
        host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
        _remove_stale(folder, host)
        path = folder / f"spill-{host}-{os.getpid()}-{secrets.token_hex(6)}.npy"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        spill = cls(path, fd, 0, dim, dtype, owned=True, folder_created=folder_created)
        spill.resize(n_rows)
        return spill

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SpillFile:
        """An existing spill file, header and size checked; not owned: closing it keeps the file."""
        path = Path(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.pread(fd, HEADER_BYTES, 0)
            n_rows, dim, dtype = _parse_header(path, head)
        except BaseException:
            os.close(fd)
            raise
        spill = cls(path, fd, n_rows, dim, dtype, owned=False)
        spill.check_size()
        return spill

    def keep(self) -> Path:
        """Stop owning the file: closing or collecting this object no longer deletes it."""
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _close_and_remove, self._fd, None, False)
        self.owned = False
        return self.path

    @property
    def row_bytes(self) -> int:
        return self.dim * self.dtype.itemsize

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Close the file; an owned file is deleted (its folder too, when left empty)."""
        self._finalizer()

    def _fd_open(self) -> int:
        if self.closed:
            raise SpillFileError(
                f"spill file {self.path} was closed (its run finished); embed again to read vectors"
            )
        return self._fd

    def resize(self, n_rows: int) -> None:
        """Grow or shrink to ``n_rows`` rows (new rows read as zeros); rewrites the header."""
        fd = self._fd_open()
        os.ftruncate(fd, HEADER_BYTES + n_rows * self.row_bytes)
        _pwrite_all(fd, memoryview(_npy_header(n_rows, self.dim, self.dtype)), 0, self.path)
        self.n_rows = n_rows

    def check_size(self) -> None:
        """Raise ``SpillFileError`` unless the file holds exactly its header and ``n_rows`` rows."""
        expected = HEADER_BYTES + self.n_rows * self.row_bytes
        actual = os.fstat(self._fd_open()).st_size
        if actual != expected:
            raise SpillFileError(
                f"spill file {self.path} has {actual} bytes, expected {expected} "
                f"({self.n_rows} rows x {self.dim} {self.dtype.name} + header): it was truncated "
                "or changed by something else; delete it and embed again"
            )

    def advise_sequential(self) -> None:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd_open(), 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def write_rows(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """``file[rows] = vectors`` (cast to the file dtype), one ``pwrite`` per run of rows."""
        fd = self._fd_open()
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise IndexError(f"spill rows out of range [0, {self.n_rows})")
        vectors = np.asarray(vectors)
        if rows.size > 1 and not bool((np.diff(rows) > 0).all()):
            order = np.argsort(rows, kind="stable")
            rows, vectors = rows[order], vectors[order]
        chunk = max(1, _WRITE_CHUNK_BYTES // max(self.row_bytes, 1))  # bounds the cast copy
        for first, start, stop in _runs(rows):
            for begin in range(start, stop, chunk):
                end = min(begin + chunk, stop)
                data = np.ascontiguousarray(vectors[begin:end], dtype=self.dtype)
                offset = HEADER_BYTES + (int(first) + begin - start) * self.row_bytes
                _pwrite_all(fd, memoryview(data).cast("B"), offset, self.path)

    def read_run(self, first: int, out: np.ndarray) -> None:
        """Rows ``first .. first + len(out)`` into ``out`` (file dtype, C-contiguous)."""
        _pread_all(self._fd_open(), memoryview(out).cast("B"),
                   HEADER_BYTES + int(first) * self.row_bytes, self.path)

    def read_sorted(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Strictly increasing ``rows`` into ``out`` (file dtype): one read per run of rows."""
        fd = self._fd_open()
        view = memoryview(out).cast("B")
        row_bytes = self.row_bytes
        for first, start, stop in _runs(rows):
            _pread_all(fd, view[start * row_bytes: stop * row_bytes],
                       HEADER_BYTES + int(first) * row_bytes, self.path)


def _parse_header(path: Path, head: bytes) -> tuple[int, int, np.dtype]:
    problem = None
    if len(head) < HEADER_BYTES or not head.startswith(_NPY_MAGIC):
        problem = "it does not start with a fastmteb spill header (.npy 1.0)"
    else:
        (length,) = struct.unpack("<H", head[8:10])
        try:
            header = ast.literal_eval(head[10:10 + length].decode("latin1"))  # literals only
        except (ValueError, SyntaxError):
            header = None
        if (
            length != HEADER_BYTES - 10
            or not isinstance(header, dict)
            or header.get("descr") not in {d.str for d in SPILL_DTYPES.values()}
            or header.get("fortran_order") is not False
            or not isinstance(header.get("shape"), tuple)
            or len(header["shape"]) != 2
            or not all(isinstance(x, int) and x >= 0 for x in header["shape"])
        ):
            problem = "its header is not a 2-D float32/float16 C-order array"
        else:
            return header["shape"][0], header["shape"][1], np.dtype(header["descr"])
    raise SpillFileError(f"spill file {path} cannot be used: {problem}")


def _runs(rows: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(first row, start, stop)`` of each run of consecutive values in sorted ``rows``."""
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [rows.size]])
    yield from zip(rows[starts].tolist(), starts.tolist(), stops.tolist())


def _pread_all(fd: int, view: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise SpillFileError(
                f"spill file {path} ended at byte {offset + done} while reading {len(view)} bytes "
                f"at {offset}: it was truncated; delete it and embed again"
            )
        done += got


def _pwrite_all(fd: int, view: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(view):
        wrote = os.pwrite(fd, view[done:], offset + done)
        if wrote == 0:
            raise OSError(f"could not write spill file {path} (disk full?)")
        done += wrote


# ---------------------------------------------------------------- the store and its lazy rows


class EmbeddingStore:
    """``[n_rows, dim]`` vectors in RAM, or in a ``SpillFile`` once they exceed ``max_bytes``.

    ``store[entries] = vectors`` writes rows; ``store[:n]`` / ``store[indices]`` is an ndarray
    while in RAM and a lazy ``RowView`` once spilled. ``resize(n)`` grows (and spills when the
    float32 size passes the limit). ``close()`` deletes the spill file.
    """

    def __init__(
        self,
        n_rows: int,
        dim: int,
        *,
        max_bytes: int | None,
        folder: str | os.PathLike[str] | None = None,
        dtype: str | np.dtype = "float32",
    ) -> None:
        self.dim = int(dim)
        self.max_bytes = max_bytes
        default_folder = Path(tempfile.gettempdir()) / "fastmteb-spill"
        self.folder = Path(folder) if folder is not None else default_folder
        self.dtype = spill_dtype(dtype)
        self.block_bytes = block_bytes_for(max_bytes)
        self._array: np.ndarray | None = None
        self._file: SpillFile | None = None
        if self._fits(n_rows):
            self._array = np.zeros((n_rows, self.dim), dtype=np.float32)
        else:
            self._file = SpillFile.create(self.folder, n_rows, self.dim, self.dtype)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_bytes: int | None = None) -> EmbeddingStore:
        """A store over an existing spill file (left in place on close): ``store[:]`` is a
        ``RowView`` that ``kernels.topk`` streams. ``max_bytes`` sets the block size only."""
        spill = SpillFile.open(path)
        store = cls.__new__(cls)
        store.dim, store.max_bytes, store.folder = spill.dim, max_bytes, spill.path.parent
        store.dtype, store.block_bytes = spill.dtype, block_bytes_for(max_bytes)
        store._array, store._file = None, spill
        return store

    def _fits(self, n_rows: int) -> bool:
        return self.max_bytes is None or n_rows * self.dim * 4 <= self.max_bytes

    @property
    def spilled(self) -> bool:
        return self._file is not None

    @property
    def path(self) -> Path | None:
        return self._file.path if self._file is not None else None

    @property
    def shape(self) -> tuple[int, int]:
        n = self._file.n_rows if self._file is not None else self._array.shape[0]
        return (n, self.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def resize(self, n_rows: int) -> None:
        """Room for ``n_rows`` rows (new ones zero); spills when RAM would pass the limit."""
        if self._file is not None:
            self._file.resize(n_rows)
        elif self._fits(n_rows):
            grown = np.zeros((n_rows, self.dim), dtype=np.float32)
            kept = min(n_rows, self._array.shape[0])
            grown[:kept] = self._array[:kept]
            self._array = grown
        else:
            spill = SpillFile.create(self.folder, n_rows, self.dim, self.dtype)
            kept = min(n_rows, self._array.shape[0])
            spill.write_rows(np.arange(kept), self._array[:kept])
            self._file, self._array = spill, None

    def __setitem__(self, entries: np.ndarray, vectors: np.ndarray) -> None:
        if self._file is None:
            self._array[entries] = vectors
        else:
            self._file.write_rows(np.asarray(entries, dtype=np.int64), vectors)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray | RowView:
        if self._file is None:
            return self._array[key]
        return RowView(self, np.arange(self.shape[0])[key] if not isinstance(key, slice) else
                       range(self.shape[0])[key])

    def close(self) -> None:
        """Delete the spill file (views of it then raise ``SpillFileError``) or drop the array."""
        if self._file is not None:
            self._file.close()
        self._array = None


class RowView:
    """Rows of a spilled ``EmbeddingStore``, float32 ``[len(rows), dim]``, read only when asked.

    ``view[indices]`` / ``view[a:b]`` narrow it (still lazy); ``np.asarray(view)`` reads every
    row; ``read(start, stop)`` reads rows ``start..stop`` of the view into one reused buffer
    (valid until the next read) and ``iter_blocks()`` walks the view that way, so resident
    memory stays one block. Rows are read in file order (one ``preadv`` per run of consecutive
    rows) and put back in the view's order.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, store: EmbeddingStore, rows: range | np.ndarray) -> None:
        self.store = store
        if isinstance(rows, range) and rows.step != 1:
            rows = np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        self.rows = rows if isinstance(rows, range) else np.asarray(rows, dtype=np.int64)
        self._buffer = np.empty((0, store.dim), dtype=np.float32)
        self._staging: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.store.dim)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"RowView({self.shape[0]} x {self.shape[1]} float32 rows of {self.store.path})"

    def __getitem__(self, key: slice | np.ndarray) -> RowView:
        if isinstance(key, slice):
            return RowView(self.store, self.rows[key])
        key = np.asarray(key)
        if key.dtype == bool or not np.issubdtype(key.dtype, np.integer):
            raise TypeError("a RowView takes a slice or an integer index array")
        if not isinstance(self.rows, range):
            return RowView(self.store, self.rows[key])
        n = len(self.rows)
        positions = np.where(key < 0, key + n, key).astype(np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= n):
            raise IndexError(f"index out of range for a RowView of {n} rows")
        return RowView(self.store, positions + self.rows.start)

    def _spill(self) -> SpillFile:
        spill = self.store._file
        if spill is None or spill.closed:
            raise SpillFileError(
                "this view's spill file was closed (its run finished); embed again to read vectors"
            )
        return spill

    def block_rows(self) -> int:
        """Rows per block of ``iter_blocks``: ``block_bytes`` of float32 (at least one row)."""
        return max(1, self.store.block_bytes // (4 * max(self.store.dim, 1)))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop`` of the view as float32, in a buffer reused by the next read."""
        start, stop, _ = slice(start, stop).indices(len(self.rows))
        n = max(stop - start, 0)
        spill = self._spill()
        if start == 0 or n > self._buffer.shape[0]:  # a new pass: check the file once
            spill.check_size()
        if n > self._buffer.shape[0]:
            self._buffer = np.empty((n, self.store.dim), dtype=np.float32)
            if spill.dtype != np.float32:
                self._staging = np.empty((n, self.store.dim), dtype=spill.dtype)
        out = self._buffer[:n]
        staging = None if spill.dtype == np.float32 else self._staging[:n]
        _read_block(spill, self.rows[start:stop], out, staging)
        return out

    def iter_blocks(self, block_rows: int | None = None) -> Iterator[np.ndarray]:
        """float32 blocks ``[<= block_rows, dim]`` in row order, from one reused buffer."""
        block_rows = int(block_rows or self.block_rows())
        if isinstance(self.rows, range) and len(self.rows):
            self._spill().advise_sequential()
        for start in range(0, len(self.rows), block_rows):
            yield self.read(start, start + block_rows)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        spill = self._spill()
        spill.check_size()
        out = np.empty(self.shape, dtype=np.float32)
        step = self.block_rows()
        staging = None
        if spill.dtype != np.float32:
            staging = np.empty((min(step, len(self.rows)), self.store.dim), dtype=spill.dtype)
        for start in range(0, len(self.rows), step):
            stop = min(start + step, len(self.rows))
            _read_block(spill, self.rows[start:stop], out[start:stop],
                        None if staging is None else staging[: stop - start])
        return out if dtype is None else out.astype(dtype, copy=False)

    def close(self) -> None:
        """Close the store behind the view (deletes its spill file)."""
        self.store.close()


def _read_block(spill: SpillFile, rows: range | np.ndarray, out: np.ndarray,
                staging: np.ndarray | None) -> None:
    """``out[i] = file[rows[i]]`` as float32; ``staging`` (file dtype) is used for float16 files."""
    if isinstance(rows, range):
        target = out if staging is None else staging
        spill.read_run(rows.start, target)
        if staging is not None:
            out[...] = staging
        return
    if rows.size and (rows.min() < 0 or rows.max() >= spill.n_rows):
        raise IndexError(f"row index out of range [0, {spill.n_rows}) in a spill file view")
    if rows.size < 2 or bool((np.diff(rows) > 0).all()):
        target = out if staging is None else staging
        spill.read_sorted(rows, target)
        if staging is not None:
            out[...] = staging
        return
    unique, inverse = np.unique(rows, return_inverse=True)
    buffer = np.empty((unique.size, spill.dim), dtype=spill.dtype)
    spill.read_sorted(unique, buffer)
    if staging is None:
        np.take(buffer, inverse, axis=0, out=out)
    else:
        out[...] = buffer[inverse]
