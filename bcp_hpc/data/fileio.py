"""Opening distributed data files: gzip transparently, with corrupt/truncated files reported clearly."""
from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import zlib

from ..errors import InputError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF4_SIGNATURE = b"\x0e\x03\x13\x01"
NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
GZIP_SIGNATURE = b"\x1f\x8b"


def signature(path: str, n: int = 8) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except FileNotFoundError as exc:
        raise InputError("file not found", path=path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, expected a file", path=path) from exc


@contextlib.contextmanager
def plain_file(path: str):
    """Yield a path to the uncompressed content of ``path`` (gzip is decompressed to a temporary file).

    Readers built on C libraries (HDF4, HDF5) need a real file; the temporary copy is
    removed afterwards.  A truncated or corrupt gzip stream raises :class:`InputError`.
    """
    if signature(path, 2) != GZIP_SIGNATURE:
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix="bcp-gunzip-", suffix=os.path.basename(path).removesuffix(".gz"))
    os.close(fd)
    try:
        try:
            with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt or truncated gzip file ({exc})", path=path) from exc
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
