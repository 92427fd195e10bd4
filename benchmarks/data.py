"""The documents tests and benchmarks read, found by checksum.

`make data` runs this module with the system Python (standard library only, so a bare clone
fails here in seconds rather than after the setup). Each file of `data_manifest.json` is
taken from ../shared/data when it is there and its sha256 matches, else downloaded from its
URL; either way it ends up at the same relative path in the cache folder (a link to the
shared copy, or the downloaded file), which is the one place tests and benchmarks read.
A file whose checksum fails is refused and removed. The product itself never reads this.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("data_manifest.json")
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
DOWNLOAD_TIMEOUT_S = 60.0


class DataError(Exception):
    """A document is missing or fails its checksum; the message says what to do."""


@dataclass(frozen=True, slots=True)
class DataFile:
    name: str  # relative path, the same under ../shared/data and in the cache
    size: int
    sha256: str
    licence: str
    url: str
    derive: str | None = None  # how to make it from the downloaded source, see DERIVATIONS
    # Only a benchmark needs it (not `make test`): `make data` fetches it when it can and
    # does not fail without it; reading it while it is absent says to run `make data`.
    optional: bool = False


def load_manifest(path: Path = MANIFEST) -> list[DataFile]:
    entries = json.loads(path.read_text(encoding="utf-8"))["files"]
    return [DataFile(**entry) for entry in entries]


def cache_root() -> Path:
    """``$PGPT_DATA_CACHE``, else ``$XDG_CACHE_HOME/privategptpp/data`` (~/.cache by default)."""
    if explicit := os.environ.get("PGPT_DATA_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "privategptpp" / "data"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches(path: Path, entry: DataFile) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_of(path) == entry.sha256


# --- reading (tests and benchmarks) -------------------------------------------------


def root() -> Path:
    """The folder tests and benchmarks read documents from (filled by ``make data``)."""
    return cache_root()


@cache
def path(name: str) -> Path:
    """The verified local copy of one manifest file, or a DataError saying to run make data."""
    entries = {entry.name: entry for entry in load_manifest()}
    if name not in entries:
        raise DataError(f"'{name}' is not in {MANIFEST.name}; add it there with its checksum.")
    local = cache_root() / name
    if not matches(local, entries[name]):
        raise DataError(
            f"Test document '{name}' is missing or changed at {local}. "
            "Run `make data` (it takes ../shared/data or downloads, checksum enforced)."
        )
    return local


# --- filling the cache (make data) ---------------------------------------------------


def derive_financebench_questions(
    source: bytes, entry: DataFile, others: Sequence[DataFile]
) -> bytes:
    """The FinanceBench questions about the filings listed beside ``entry`` (its folder's
    pdfs/ in the manifest), seven fields each: 32 for financebench-dev."""
    folder = entry.name.split("/")[0]
    filings = {Path(o.name).stem for o in others if o.name.startswith(f"{folder}/pdfs/")}
    keys = ("financebench_id", "company", "doc_name", "question_type", "question", "answer")
    lines = []
    for line in source.decode("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row["doc_name"] not in filings:
            continue
        out = {key: row[key] for key in keys}
        out["evidence"] = [
            {k: e[k] for k in ("doc_name", "evidence_page_num", "evidence_text")}
            for e in row["evidence"]
        ]
        lines.append(json.dumps(out))
    return "".join(line + "\n" for line in lines).encode("utf-8")


DERIVATIONS: dict[str, Callable[[bytes, DataFile, Sequence[DataFile]], bytes]] = {
    "financebench-questions": derive_financebench_questions,
}

Fetch = Callable[[str], bytes]


def http_fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        data: bytes = response.read()
        return data


@dataclass
class Report:
    shared: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # checksum failures, with the reason
    missing: list[str] = field(default_factory=list)  # no source could give it
    optional_missing: list[str] = field(default_factory=list)  # the same, benchmark-only files

    @property
    def ok(self) -> bool:
        return not self.refused and not self.missing


def link_shared(target: Path, shared_file: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(shared_file.resolve())


def download(
    entry: DataFile, target: Path, files: Sequence[DataFile], fetch: Fetch, url: str
) -> str | None:
    """Fetch one file into the cache; the reason it was refused, or None when it verified."""
    data = fetch(url)
    if entry.derive:
        data = DERIVATIONS[entry.derive](data, entry, files)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry.size or digest != entry.sha256:
        return (
            f"{entry.name}: checksum mismatch from {url} "
            f"(got {len(data):,} bytes sha256 {digest[:16]}..., "
            f"expected {entry.size:,} bytes sha256 {entry.sha256[:16]}...); not kept"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    partial.replace(target)
    return None


def fill_cache(
    files: Sequence[DataFile],
    *,
    cache_dir: Path,
    shared_dir: Path | None = SHARED_DATA,
    mirror: str | None = None,
    fetch: Fetch = http_fetch,
) -> Report:
    """Make every file present and verified in ``cache_dir``; never raises for a bad file."""
    report = Report()
    offline_reason: str | None = None  # after one network failure, don't wait on the rest
    for entry in files:
        target = cache_dir / entry.name
        shared_file = shared_dir / entry.name if shared_dir else None
        if shared_file is not None and matches(shared_file, entry):
            if not (target.is_symlink() and target.resolve() == shared_file.resolve()):
                link_shared(target, shared_file)
            report.shared.append(entry.name)
            continue
        if matches(target, entry):
            report.cached.append(entry.name)
            continue
        if target.is_symlink() or target.exists():
            # A stale link or a changed file: never read a document that fails its checksum.
            target.unlink()
        url = f"{mirror.rstrip('/')}/{entry.name}" if mirror else entry.url
        missing = report.optional_missing if entry.optional else report.missing
        if offline_reason is not None:
            missing.append(f"{entry.name}  <- {url}")
            continue
        try:
            refusal = download(entry, target, files, fetch, url)
        except urllib.error.HTTPError as exc:
            missing.append(f"{entry.name}  <- {url} (HTTP {exc.code})")
            continue
        except (urllib.error.URLError, OSError) as exc:
            offline_reason = str(getattr(exc, "reason", exc))
            missing.append(f"{entry.name}  <- {url} ({offline_reason})")
            continue
        if refusal:
            report.refused.append(refusal)
        else:
            report.downloaded.append(entry.name)
    return report


def explain(report: Report, cache_dir: Path, shared_dir: Path | None) -> str:
    lines = []
    if report.refused:
        lines.append("Refused (checksum failed, file removed):")
        lines += [f"  {reason}" for reason in report.refused]
    if report.missing:
        lines.append(
            f"Missing test documents: not in {shared_dir or '(no shared folder)'} with the "
            "right checksum, and not downloadable here:"
        )
        lines += [f"  {item}" for item in report.missing]
    lines.append(
        f"Put the files under {shared_dir or '../shared/data'} (same relative paths) or allow "
        f"downloads from the URLs above; they are cached in {cache_dir}. "
        "Licences and checksums: benchmarks/data_manifest.json."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make data", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mirror",
        default=os.environ.get("PGPT_DATA_MIRROR"),
        help="download from MIRROR/<name> instead of each file's URL",
    )
    parser.add_argument(
        "--shared",
        type=Path,
        default=SHARED_DATA,
        help="the shared data folder tried first (default ../shared/data)",
    )
    args = parser.parse_args(argv)
    cache_dir = cache_root()
    shared_dir: Path | None = args.shared if args.shared.is_dir() else None
    report = fill_cache(
        load_manifest(), cache_dir=cache_dir, shared_dir=shared_dir, mirror=args.mirror
    )
    if not report.ok:
        print(explain(report, cache_dir, shared_dir), file=sys.stderr)
        return 1
    print(
        f"data: {len(report.shared) + len(report.cached) + len(report.downloaded)} documents "
        f"ready in {cache_dir} ({len(report.shared)} from {shared_dir}, "
        f"{len(report.cached)} already cached, {len(report.downloaded)} downloaded)"
    )
    if report.optional_missing:
        print(
            f"data: {len(report.optional_missing)} benchmark-only documents not available "
            "here (not needed by the tests), e.g. "
            f"{report.optional_missing[0]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
