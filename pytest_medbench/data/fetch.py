"""``medbench fetch``: download the benchmark files from the Hugging Face Hub into a data directory.

The Hub client (huggingface_hub) does the transfer: ``HF_ENDPOINT``, ``HF_TOKEN``, resumable
downloads, offline mode and progress bars. It checks only a download's size, so every file is hashed
here and compared with what the Hub's listing publishes for it: the sha256 of an LFS file, the git
blob sha1 of a small file kept in git. Files land in a staging folder and move into the data
directory only once verified; the lock file then pins the repo commits and each file's sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.secrets import mask, register_url, without_userinfo
from .files import MEDR_DIR, MEDS_DIR
from .lock import OUTPUTS_DIR, Lock, LockedFile, LockedRepo, read_lock, write_lock
from .meds_tasks import PHYSIONET_GATED

STAGING_DIR = ".medbench-download"  # inside the data directory; kept after a failure, for resuming
MEDS_FOLDERS = frozenset(
    {
        "Diagnosis",
        "Explanation",
        "Fact_verication",  # sic: the upstream folder name
        "Information_extraction",
        "MCQA",
        "NER",
        "Rationale",
        "Text_classification",
        "Treatment_planning",
    }
)
_TASK_FILE = re.compile(r"^(task\d+)_[^/]*\.jsonl?$")
MEDR_CASE_FILES = (
    "diagnosis_957_cases_with_rare_disease_491.json",
    "treatment_496_cases_with_rare_disease_165.json",
)


def _id_ranges(task_ids: frozenset[str]) -> str:
    """ "41, 42, 78, 83-94, ..." from {"task41", "task42", ...}: runs of three or more as a range."""
    numbers, runs = sorted(int(task[4:]) for task in task_ids), []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


GATED_IDS = _id_ranges(PHYSIONET_GATED)

LICENCES = {
    "meds-bench": (
        "MedS-Bench (Wu et al. 2025): research use only; every source dataset keeps its own terms. "
        f"The PhysioNet-gated MIMIC tasks ({GATED_IDS}) are never downloaded: with PhysioNet credentials, "
        f"put your own copy at {{root}}/{MEDS_DIR}/<folder>/task<ID>_<name>.json."
    ),
    "medrbench": (
        "MedR-Bench (Qiu et al. 2025) and its released outputs: CC BY-NC-SA, research use only, "
        "attribution required; do not redistribute."
    ),
}
MANUAL_LAYOUT = (
    f"{{root}}/{MEDS_DIR}/<HF folder>/task*.json[l] (from Henrychur/MedS-Bench, Text_summarization from "
    f"Henrychur/MedS-Bench-SPLIT) and {{root}}/{MEDR_DIR}/{MEDR_CASE_FILES[0]}, "
    f"{{root}}/{MEDR_DIR}/{MEDR_CASE_FILES[1]} (from MAGIC-AI4Med/MedRBench)"
)


@dataclass(frozen=True)
class Source:
    """One Hub dataset repo and which of its files go where in the data directory."""

    repo: str
    dataset: str  # the lock's name for it
    select: Callable[[str], str | None]  # repo path -> path in the data directory, or None to skip


def _meds_file(folders: frozenset[str]) -> Callable[[str], str | None]:
    def select(path: str) -> str | None:
        folder, _, name = path.partition("/")
        match = _TASK_FILE.match(name)
        if folder not in folders or not match or match.group(1) in PHYSIONET_GATED:
            return None
        return f"{MEDS_DIR}/{path}"

    return select


def _medr_case(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    return f"{MEDR_DIR}/{name}" if name in MEDR_CASE_FILES else None


def _released_output(path: str) -> str | None:
    return f"{OUTPUTS_DIR}/{path}" if path.endswith((".json", ".jsonl")) else None


SOURCES: dict[str, tuple[Source, ...]] = {
    "meds-bench": (
        Source("Henrychur/MedS-Bench", "meds-bench", _meds_file(MEDS_FOLDERS)),
        Source("Henrychur/MedS-Bench-SPLIT", "meds-bench", _meds_file(frozenset({"Text_summarization"}))),
    ),
    "medrbench": (Source("MAGIC-AI4Med/MedRBench", "medrbench", _medr_case),),
}
OUTPUTS_SOURCE = Source("Henrychur/MedRbench-Inference-Results", "medrbench-outputs", _released_output)


class HubUnreachable(Exception):
    """The Hub cannot be reached (offline, blocked, refused): nothing can be fetched."""


@dataclass
class FetchReport:
    """What one fetch did; ``failed`` files were not placed (and are not in the lock)."""

    downloaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    gated_skipped: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    lock_path: Path | None = None


def git_blob_sha1(size: int) -> Any:
    """A hasher primed with git's blob header: feed it the content to get the blob's id."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {size}\0".encode())
    return digest


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, in one read."""
    sha256, sha1 = hashlib.sha256(), git_blob_sha1(path.stat().st_size)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def verify_download(path: Path, listed: Any) -> tuple[str | None, str]:
    """(why the file is not the one the Hub lists, or None; its sha256)."""
    if path.stat().st_size != listed.size:
        return f"{path.stat().st_size} bytes, the Hub lists {listed.size}", ""
    sha256, sha1 = file_digests(path)
    if listed.lfs is not None and sha256 != listed.lfs.sha256:
        return f"sha256 {sha256[:12]}... but the Hub lists {listed.lfs.sha256[:12]}...", sha256
    if listed.lfs is None and sha1 != listed.blob_id:
        return f"git blob sha1 {sha1[:12]}... but the Hub lists {listed.blob_id[:12]}...", sha256
    return None, sha256


class Fetcher:
    """Fetches the sources of one dataset into ``root``, printing one line per event through ``say``."""

    def __init__(
        self,
        root: Path,
        *,
        revision: str | None = None,
        update: bool = False,
        say: Callable[[str], None] = print,
    ) -> None:
        from huggingface_hub import HfApi

        self.root, self.revision, self.update, self.say = root, revision, update, say
        self.endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not at huggingface_hub import
        register_url(self.endpoint)  # its user:password, should a message of the client echo the URL
        self.api = HfApi(endpoint=self.endpoint)
        self.report = FetchReport()

    def fetch(self, sources: tuple[Source, ...]) -> FetchReport:
        self.root.mkdir(parents=True, exist_ok=True)
        old_lock = read_lock(self.root) or Lock((), ())
        repos: list[LockedRepo] = []
        files: list[LockedFile] = []
        try:
            for source in sources:
                commit = self._resolve(source, old_lock)
                self.say(f"{source.repo}: commit {commit}")
                files += self._fetch_repo(source, commit)
                repos.append(LockedRepo(source.repo, commit, source.dataset))
        finally:  # the repos fetched in full are locked even when a later one fails; files placed
            # from a repo cut short are found in place (by their hash) by the next fetch
            self.report.lock_path = write_lock(self.root, old_lock.replacing(repos, files))
        if not self.report.failed:
            shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)
        return self.report

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one Hub call; a network or access failure becomes HubUnreachable (one line for the user)."""
        import httpx2  # huggingface_hub 2.x's HTTP client
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

        try:
            return call()
        except (OfflineModeIsEnabled, LocalEntryNotFoundError, httpx2.TransportError) as exc:
            raise HubUnreachable(
                mask(f"cannot reach the Hugging Face Hub at {self._where()} ({what}): {_reason(exc)}")
            ) from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            if status == 404:
                raise HubUnreachable(
                    f"the Hugging Face Hub at {self._where()} has no {what} (HTTP 404)"
                ) from exc
            raise HubUnreachable(
                f"the Hugging Face Hub at {self._where()} refused {what} (HTTP {status}); "
                "if the repo needs access, set HF_TOKEN"
            ) from exc

    def _where(self) -> str:
        """The Hub's URL as messages show it: without ``user:password@`` (as for ``--api-base``)."""
        from huggingface_hub import constants

        return without_userinfo(self.endpoint or constants.ENDPOINT) or ""

    def _resolve(self, source: Source, lock: Lock) -> str:
        """The commit to fetch: --revision, else the lock's (unless --update), else main's head."""
        wanted = self.revision or (None if self.update else lock.commit_of(source.repo)) or "main"
        info = self._call(
            f"{source.repo}@{wanted}", lambda: self.api.dataset_info(source.repo, revision=wanted)
        )
        return info.sha

    def _fetch_repo(self, source: Source, commit: str) -> list[LockedFile]:
        listing = self._call(
            f"the file list of {source.repo}",
            lambda: [
                entry
                for entry in self.api.list_repo_tree(
                    source.repo, recursive=True, revision=commit, repo_type="dataset"
                )
                if hasattr(entry, "blob_id")  # files, not folders
            ],
        )
        kept = []
        for entry in listing:
            target = source.select(entry.path)
            if target is None:
                name = entry.path.rsplit("/", 1)[-1]
                match = _TASK_FILE.match(name)
                if match and match.group(1) in PHYSIONET_GATED:
                    self.report.gated_skipped.append(f"{source.repo}/{entry.path}")
                continue
            placed = self._fetch_file(source, commit, entry, target)
            if placed is not None:
                kept.append(placed)
        if source.select is _medr_case:
            found = {locked_file.path.rsplit("/", 1)[-1] for locked_file in kept}
            for name in MEDR_CASE_FILES:
                if name not in found:
                    self.report.not_found.append(f"{source.repo}: {name}")
        return kept

    def _fetch_file(self, source: Source, commit: str, listed: Any, target: str) -> LockedFile | None:
        from huggingface_hub import hf_hub_download

        destination = self.root / target
        if destination.is_file():  # already in place: keep it when it is what the Hub lists
            problem, sha256 = verify_download(destination, listed)
            if problem is None:
                self.report.reused.append(target)
                return LockedFile(target, source.repo, listed.path, listed.size, sha256)
        staging = self.root / STAGING_DIR / source.repo
        downloaded = Path(
            self._call(
                f"{source.repo}/{listed.path}",
                lambda: hf_hub_download(
                    source.repo,
                    listed.path,
                    repo_type="dataset",
                    revision=commit,
                    local_dir=staging,
                    endpoint=self.endpoint,
                ),
            )
        )
        problem, sha256 = verify_download(downloaded, listed)
        if problem:
            downloaded.unlink()
            self.report.failed.append(f"{target}: {problem}")
            self.say(f"REJECTED {source.repo}/{listed.path}: {problem}; not placed")
            return None
        destination.parent.mkdir(parents=True, exist_ok=True)
        downloaded.replace(destination)
        self.report.downloaded.append(target)
        return LockedFile(target, source.repo, listed.path, listed.size, sha256)


def _reason(exc: BaseException) -> str:
    """The innermost cause, in a few words (the token travels in a header, never in a URL or here)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
