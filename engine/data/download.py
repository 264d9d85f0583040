"""Files of the standard data sets, downloaded on first use into the user's cache folder.

Where: ``$BLOCKPROP_DATA_DIR`` when set, else ``$XDG_CACHE_HOME/blockprop`` (``~/.cache/blockprop``
when XDG_CACHE_HOME is not set), one folder per data set (``mnist/``, ``cifar10/``, ...). A file
is fetched from the first of its mirrors that answers (``$BLOCKPROP_DATA_MIRROR``, a lab's local
copy, is tried before the others), into ``<name>.part``; an interrupted download goes on from
where it stopped (an HTTP Range request), and only a file whose SHA-256 matches the pinned sum is
renamed to its final name. So a corrupt or partial file is never used, and a failed download
leaves nothing under the final name. A file already in place is checked the same way; one whose
sum is wrong is renamed to ``<name>.bad`` (kept for the user to look at) and fetched again.

Offline, every mirror fails: ``fetch`` raises one DataError line naming the URL tried and the
exact folder and file name to place a manual download in. Only urllib (the standard library).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BlockPropError, DataError

DATA_DIR_ENV = "BLOCKPROP_DATA_DIR"
MIRROR_ENV = "BLOCKPROP_DATA_MIRROR"
CHUNK = 256 * 1024  # bytes read between progress reports and checks for Cancel
TIMEOUT = 30.0  # seconds a mirror may stay silent before the next one is tried
USER_AGENT = "BlockProp (data set download)"

# progress(done_bytes, total_bytes or None, file name); cancel() -> True to stop
Progress = Callable[[int, "int | None", str], None]
Cancel = Callable[[], bool]


class DownloadCancelled(BlockPropError):
    """The user cancelled a download (the ``.part`` file is kept, so it can resume)."""


@dataclass(frozen=True)
class Remote:
    """One file of a data set: its name, pinned SHA-256 and published size in bytes."""

    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Source:
    """Where a data set's files come from: its cache folder name and its mirrors (base URLs,
    tried in order; a file's URL is base + name)."""

    folder: str
    mirrors: tuple[str, ...]
    files: tuple[Remote, ...]

    def remote(self, name: str) -> Remote:
        return next(r for r in self.files if r.name == name)


def data_dir() -> Path:
    """The folder holding every downloaded data set (see the module docstring)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "blockprop"


def mirrors_for(source: Source) -> list[str]:
    """The base URLs to try, in order: ``$BLOCKPROP_DATA_MIRROR`` first when set."""
    extra = os.environ.get(MIRROR_ENV, "").strip()
    return ([extra] if extra else []) + list(source.mirrors)


def sha256_of(path: Path, cancel: Cancel | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            if cancel is not None and cancel():
                raise DownloadCancelled(f"checking {path.name} was cancelled")
            h.update(block)
    return h.hexdigest()


def missing(source: Source) -> list[Remote]:
    """The files of ``source`` not yet in the cache folder (not checked: ``fetch`` checks)."""
    folder = data_dir() / source.folder
    return [r for r in source.files if not (folder / r.name).is_file()]


def _url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _get(url: str, part: Path, name: str, progress: Progress | None, cancel: Cancel | None):
    """Download ``url`` into ``part``, going on from its current length when the server
    honours a Range request (206); a full answer (200) starts the file again."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing past what we have: the .part may be complete
            return
        raise
    with resp:
        if resp.status == 206:
            first = resp.headers.get("Content-Range", "").split(" ")[-1].split("-")[0]
            if first != str(have):  # not the range asked for: start again
                raise OSError(f"the server sent bytes from {first!r}, not from {have}")
            mode, done = "ab", have
        else:
            mode, done = "wb", 0
        length = resp.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else None
        with open(part, mode) as f:
            if progress is not None:
                progress(done, total, name)
            while True:
                if cancel is not None and cancel():
                    raise DownloadCancelled(
                        f"download of {name} cancelled; {done:,} bytes kept in {part} "
                        "(the next download goes on from there)"
                    )
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total, name)
        if total is not None and done < total:  # urllib reads a cut connection as the end
            raise http.client.IncompleteRead(b"", total - done)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, http.client.IncompleteRead):
        return "the connection closed before the end of the file"
    if isinstance(e, urllib.error.URLError):
        r = e.reason
        return getattr(r, "strerror", None) or str(r)
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def fetch(
    source: Source,
    name: str,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Path:
    """The verified local copy of file ``name`` of ``source``, downloaded when missing.

    Raises DataError (one line: the URL tried, the folder and file name for a manual copy)
    when no mirror gives a file with the pinned sum, DownloadCancelled when ``cancel()``.
    """
    remote = source.remote(name)
    folder = data_dir() / source.folder
    dest, part = folder / name, folder / (name + ".part")
    if dest.is_file():
        if sha256_of(dest, cancel) == remote.sha256:
            return dest
        os.replace(dest, folder / (name + ".bad"))  # never used; kept for the user to look at
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot make the data folder ({_reason(e)})", file=str(folder)) from None
    tried: list[tuple[str, str]] = []
    for base in mirrors_for(source):
        url = _url(base, name)
        try:
            _get(url, part, name, progress, cancel)
        except DownloadCancelled:
            raise
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError is an OSError
            tried.append((url, _reason(e)))
            continue
        if part.exists() and sha256_of(part, cancel) == remote.sha256:
            os.replace(part, dest)
            return dest
        got = part.stat().st_size if part.exists() else 0
        part.unlink(missing_ok=True)  # wrong bytes: never resumed from, never used
        tried.append((url, f"the file's SHA-256 does not match ({got:,} bytes received)"))
    url, why = tried[-1] if tried else ("(no mirror)", "no mirror is set")
    more = f" and {len(tried) - 1} other mirror(s)" if len(tried) > 1 else ""
    raise DataError(
        f"cannot download {name} from {url}{more} ({why}); offline? download it by hand and "
        f"put it in {folder}{os.sep} as {name}"
    )


def fetch_all(
    source: Source, progress: Progress | None = None, cancel: Cancel | None = None
) -> dict[str, Path]:
    """Every file of ``source``, verified (``fetch`` for each)."""
    return {r.name: fetch(source, r.name, progress, cancel) for r in source.files}


def text_progress(stream) -> Progress:
    """A progress bar on ``stream`` (the CLI's stderr): ``name [#####.....]  45%  4.5/9.9 MB``,
    redrawn in place, ended with a newline when a file is complete."""
    state = {"name": None, "shown": -1}

    def show(done: int, total: int | None, name: str) -> None:
        if name != state["name"]:
            state.update(name=name, shown=-1)
        if total:
            pct = min(100, done * 100 // total)
            if pct == state["shown"]:
                return
            state["shown"] = pct
            bar = "#" * (pct // 4) + "." * (25 - pct // 4)
            line = f"\r{name} [{bar}] {pct:3d}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB"
            end = "\n" if done >= total else ""
        else:
            line, end = f"\r{name}  {done / 1e6:.1f} MB", ""
        stream.write(line + end)
        stream.flush()

    return show


def describe(sources: Sequence[Source]) -> str:
    """Where each source's files go and where they come from (README and --help text)."""
    lines = []
    for s in sources:
        names = ", ".join(r.name for r in s.files)
        lines.append(f"{data_dir() / s.folder}: {names} (from {s.mirrors[0]})")
    return "\n".join(lines)
