"""The leaderboard's ``run`` section: the model and judge, the plugin and git versions, the data
files and prompt templates by sha256, the generation and scoring settings, and package versions."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from . import __version__
from .data.declared import declared_files
from .data.files import data_files, sha256_file
from .judge.llm import JUDGE_TEMPERATURE
from .metrics.overlap import TOKENIZER_PACKAGES, punkt_source
from .models.secrets import without_userinfo
from .prompts.templates import template_hashes
from .run import Run, now

PACKAGES = (
    "pytest",
    "pytest-xdist",
    "litellm",
    "rapidfuzz",
    "jsonschema",
    "nltk",
    "rouge",
    "jieba",
    "janome",
)


def run_metadata(run: Run) -> dict[str, Any]:
    """What was evaluated, how, on which data and code: the leaderboard's ``run`` section."""
    root = run.settings.data_dir
    model: dict[str, Any] = {
        "name": run.model.name,
        "litellm_model": run.model.litellm_model,
        "api_base": None if run.model.name.startswith("replay:") else without_userinfo(run.model.api_base),
        "builtin": run.model.builtin,
    }
    if run.settings.model_revision is not None:
        model["revision"] = run.settings.model_revision
    if run.model.group is not None:
        model["deployments"] = [
            {"model": endpoint.model, "api_base": without_userinfo(endpoint.api_base)}
            for endpoint in run.model.group.endpoints
        ]
    return {
        "model": model,
        "judge": {
            "model": run.settings.judge_model or "offline",
            "approximate": not run.settings.judge_model,
            "agent_model": run.settings.agent_model or "offline",
            "agent_api_base": without_userinfo(agent.api_base) if (agent := run.agent_spec()) else None,
            "judges": [
                {"model": spec.name, "api_base": without_userinfo(spec.api_base)}
                for spec in run.judge_specs()
            ],
            "temperature": JUDGE_TEMPERATURE if run.settings.judge_models else None,
            "prompts": run.settings.prompts,
            "evidence": run.evidence_source(),
            **({"check": run.settings.judge_check} if run.settings.judge_check else {}),
        },
        "plugin_version": __version__,
        "git_commit": _git_commit(run.rootdir),
        "data": {
            "dir": str(root),
            "files": {
                _data_key(path, root, run.rootdir): sha256_file(path)
                for path in data_files(root) + declared_files(root, run.tasks_dir)
            },
            "repos": _locked_repos(root),
        },
        "meds_tasks_absent": run.absent_meds_tasks(),
        "prompt_templates": template_hashes() | run.prompts.hashes(),
        "generation": {
            "temperature": run.settings.temperature,
            "max_tokens": run.settings.max_tokens,
            "seed": run.settings.seed,
            "epochs": run.settings.epochs,
            "timeout_s": run.settings.timeout_s,
        },
        "scoring": {
            "meds_scoring": run.settings.scoring,
            "meds_protocol": run.settings.protocol,
            "meds_shots": run.settings.shots,
            "limit": run.settings.limit,
            # BLEU/ROUGE depend on these: two runs with different tokenizers must not look alike
            "tokenizers": {name: _version(name) for name in TOKENIZER_PACKAGES},
            "punkt": punkt_source(),
        },
        "started": run.started,
        "finished": now(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _locked_repos(root: Path) -> list[dict[str, str]]:
    """The Hub repos and commits the data directory's lock pins (none without a readable lock)."""
    from dataclasses import asdict

    from .data.lock import LockFileError, read_lock

    try:
        lock = read_lock(root)
    except LockFileError:  # reported as a data error item already
        return []
    return [asdict(repo) for repo in lock.repos] if lock else []


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit(rootdir: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(rootdir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _data_key(path: Path, root: Path, rootdir: Path) -> str:
    """A data file's name in ``run.data.files``: relative to the data dir, else (a ``tasks_dir``
    file) to the rootdir, else absolute."""
    for base in (root, rootdir):
        if path.resolve().is_relative_to(base.resolve()):
            return path.resolve().relative_to(base.resolve()).as_posix()
    return path.as_posix()
