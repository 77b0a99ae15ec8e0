"""Download a file over HTTP(S) with a progress bar, a size and checksum check, atomically."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from sansa_cli.artifacts.files import atomic_path
from sansa_cli.errors import DownloadError


def download(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest``; verify the byte count the server announced and ``sha256``.

    The file appears at ``dest`` only when complete and verified. Failures raise
    :class:`DownloadError` with the URL, the reason and where to put the file by hand.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    dest = Path(dest)
    by_hand = f"download it by hand from {url} and place it at {dest}"
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https or local URL)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url} ({reason}); {by_hand}") from exc
    expected = response.headers.get("Content-Length")
    expected = int(expected) if expected and expected.isdigit() else None
    digest, received = hashlib.sha256(), 0
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    try:
        with response, atomic_path(dest) as tmp, tmp.open("wb") as out, \
                Progress(*columns, transient=True) as progress:
            task = progress.add_task(f"downloading {dest.name}", total=expected)
            while block := _read(response, url, by_hand):
                out.write(block)
                digest.update(block)
                received += len(block)
                progress.update(task, advance=len(block))
            out.flush()
            out.close()
            if expected is not None and received != expected:
                raise DownloadError(
                    f"download of {url} was cut short ({received} of {expected} bytes); "
                    f"run the command again or {by_hand}"
                )
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise DownloadError(
                    f"download of {url} has SHA-256 {digest.hexdigest()}, expected {sha256}; "
                    f"the file is damaged or was replaced upstream: {by_hand}"
                )
    except OSError as exc:
        if isinstance(exc, DownloadError):
            raise
        raise DownloadError(
            f"could not write {dest} ({exc}); free some space or {by_hand}") from exc
    return dest


def _read(response, url: str, by_hand: str) -> bytes:
    try:
        return response.read(1 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"download of {url} broke off ({exc}); {by_hand}") from exc
