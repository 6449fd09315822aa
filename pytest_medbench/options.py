"""Command-line options and ini keys, and the frozen Settings they resolve to.

Every option is also an ini key (``[tool.pytest.ini_options]``): ``--model`` is ``medbench_model``,
``--medbench-data`` is ``medbench_data``, ``--temperature`` is ``medbench_temperature`` and so on.
Precedence: command line, then environment (``MEDBENCH_DATA`` only), then ini, then the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .data.files import DATA_ENV
from .models.secrets import without_userinfo

if TYPE_CHECKING:
    from .report.gates import Gate

DEFAULT_MODEL = "medbench/baseline"
# value rules, checked when options are read: a bad value is a usage error before anything runs
AT_LEAST_1 = (lambda value: value >= 1, "at least 1")
NOT_NEGATIVE = (lambda value: value >= 0, "at least 0")
POSITIVE = (lambda value: value > 0, "greater than 0")


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    type: Any = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    is_switch: bool = False
    repeatable: bool = False  # given several times on the command line; a list (linelist) in ini
    rule: tuple[Callable[[Any], bool], str] | None = None  # (check, what it says), e.g. AT_LEAST_1

    @property
    def dest(self) -> str:
        name = self.flag.lstrip("-").replace("-", "_")
        return name if name.startswith("medbench_") else f"medbench_{name}"


OPTIONS = (
    Option(
        "--model",
        "model to evaluate: any litellm model string, medbench/oracle, medbench/baseline, "
        "or replay:PATH (default: medbench/baseline)",
        default=DEFAULT_MODEL,
    ),
    Option("--api-base", "base URL of the model's API, e.g. a local OpenAI-compatible server"),
    Option(
        "--model-revision",
        "a tag naming the model's revision (weights, deployment); it joins the cache key, so answers "
        "cached for another revision are never reused",
    ),
    Option(
        "--model-router",
        "YAML file in litellm's Router format (model_list): --model names a model_name in it, and calls "
        "are spread over its deployments, failing over past dead ones",
    ),
    Option(
        "--judge-model",
        "litellm model that judges MedR-Bench answers; repeat it for a jury (majority verdict, a tie is "
        "incorrect); MODEL@URL gives that judge its own API base (default: the offline judge)",
        repeatable=True,
    ),
    Option(
        "--judge-api-base",
        "base URL of the judges' and the agent's API, for judges without @URL (default: litellm's own)",
    ),
    Option(
        "--agent-model",
        "litellm model playing MedR-Bench's patient agent (default: the judge model, else the offline agent)",
    ),
    Option(
        "--medbench-prompts",
        "MedR-Bench prompt wording: ours, or upstream (the template files in <data>/medrbench/instructions/)",
        default="ours",
        choices=("ours", "upstream"),
    ),
    Option(
        "--medbench-judge-check",
        "the JSON of 'medbench judge-check --json': its figures go into the leaderboard (run.judge.check)",
    ),
    Option(
        "--medbench-evidence-dir",
        "folder of .txt/.md files the MedR-Bench judges search (BM25) for evidence; default: no retrieval",
    ),
    Option(
        "--medbench-data",
        "data directory holding meds-bench/ and medrbench/ "
        "(default: $MEDBENCH_DATA, else the bundled fixtures)",
    ),
    Option("--medbench-report", "write the leaderboard JSON here"),
    Option("--medbench-samples", "write one JSON line per item here"),
    Option("--medbench-html", "write a self-contained HTML leaderboard here"),
    Option(
        "--medbench-progress",
        "progress lines (done/total, errors, cache hits, tokens, cost, ETA): auto = on a terminal unless -q",
        default="auto",
        choices=("auto", "on", "off"),
    ),
    Option(
        "--medbench-cache", "response cache file (default: .medbench_cache/responses.sqlite3 under rootdir)"
    ),
    Option("--medbench-no-cache", "neither read nor write the response cache", is_switch=True, default=False),
    Option("--medbench-timeout", "seconds one model call may take", type=float, default=120.0, rule=POSITIVE),
    Option(
        "--medbench-retries",
        "retries of a call after 429, 5xx, timeouts, dropped connections and empty answers",
        type=int,
        default=4,
        rule=NOT_NEGATIVE,
    ),
    Option(
        "--medbench-concurrency",
        "keep N model calls in flight (threads) ahead of the tests, which take each answer as it "
        "arrives; with -n, each worker answers its share N at a time",
        type=int,
        default=1,
        rule=AT_LEAST_1,
    ),
    Option(
        "--medbench-rpm",
        "at most N requests per minute to the model, shared by all workers",
        type=int,
        rule=AT_LEAST_1,
    ),
    Option(
        "--medbench-tpm",
        "at most N tokens per minute to the model, shared by all workers",
        type=int,
        rule=AT_LEAST_1,
    ),
    Option(
        "--medbench-backoff",
        "seconds before the first retry, doubling each time up to 30 (a Retry-After header wins)",
        type=float,
        default=1.0,
        rule=NOT_NEGATIVE,
    ),
    Option("--temperature", "sampling temperature passed to the model", type=float, rule=NOT_NEGATIVE),
    Option("--max-tokens", "maximum tokens the model may generate", type=int, rule=AT_LEAST_1),
    Option("--seed", "seed passed to the model and used to draw few-shot examples", type=int),
    Option(
        "--medbench-limit",
        "only the first N instances of each task (cases of each setting)",
        type=int,
        rule=AT_LEAST_1,
    ),
    Option(
        "--medbench-epochs",
        "ask each item K times; scores are averaged, an item passes when all pass",
        type=int,
        default=1,
        rule=AT_LEAST_1,
    ),
    Option(
        "--medbench-protocol",
        "MedS-Bench prompting: code (3-shot everywhere, the released code) or "
        "paper (zero-shot MCQA, 3-shot elsewhere)",
        default="code",
        choices=("code", "paper"),
    ),
    Option(
        "--medbench-shots",
        "number of few-shot examples for MedS-Bench (overrides the protocol)",
        type=int,
        rule=NOT_NEGATIVE,
    ),
    Option("--medbench-baseline", "a previous run's leaderboard JSON: fail on a significant drop against it"),
    Option(
        "--medbench-max-drop",
        "points a metric may drop against --medbench-baseline before a significant drop fails (default 2)",
        type=float,
        default=2.0,
        rule=NOT_NEGATIVE,
    ),
    Option(
        "--medbench-alpha",
        "significance level of the baseline comparison",
        type=float,
        default=0.05,
        rule=(lambda value: 0 < value < 1, "between 0 and 1"),
    ),
    Option(
        "--medbench-scoring",
        "MedS-Bench scoring: official (the released code, quirks included) or strict",
        default="official",
        choices=("official", "strict"),
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("medbench", "medical LLM benchmarks (pytest-medbench)")
    for option in OPTIONS:
        if option.is_switch:
            group.addoption(
                option.flag, action="store_true", default=None, dest=option.dest, help=option.help
            )
            parser.addini(option.dest, f"ini form of {option.flag}", type="bool", default=False)
        elif option.repeatable:
            group.addoption(option.flag, action="append", dest=option.dest, default=None, help=option.help)
            parser.addini(option.dest, f"{option.flag}, one per line", type="linelist", default=[])
        else:
            group.addoption(
                option.flag, dest=option.dest, default=None, choices=option.choices, help=option.help
            )
            parser.addini(option.dest, f"ini form of {option.flag}", default=None)


def add_gate_options(parser: pytest.Parser) -> None:
    parser.getgroup("medbench").addoption(
        "--medbench-gate",
        action="append",
        dest="medbench_gate",
        default=[],
        metavar="PATH OP NUMBER",
        help="a deployment gate such as 'meds.mcqa.accuracy>=60' (repeatable); with gates or a baseline "
        "the exit code is their verdict",
    )
    parser.addini("medbench_gates", "deployment gates, one per line", type="linelist", default=[])


def pyproject_table(config: pytest.Config) -> dict[str, Any]:
    """``[tool.medbench]`` of the rootdir's pyproject.toml (gates, model aliases), or {}."""
    pyproject = Path(str(config.rootpath)) / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("medbench", {})
    except tomllib.TOMLDecodeError as exc:
        raise pytest.UsageError(f"{pyproject}: {exc}") from exc


def gate_texts(config: pytest.Config, table: dict[str, Any]) -> list[str]:
    """Gates from the command line, the ini key, and ``[tool.medbench] gates``."""
    return [
        *(config.getoption("medbench_gate") or []),
        *config.getini("medbench_gates"),
        *table.get("gates", []),
    ]


def option_value(config: pytest.Config, option: Option) -> Any:
    value = config.getoption(option.dest)
    if value is None and option.flag == "--medbench-data":
        value = os.environ.get(DATA_ENV) or None
    if value is None:
        value = config.getini(option.dest)
        if value in ("", None) or value == []:
            value = None
    if value is None:
        return option.default
    if option.is_switch:
        return bool(value)
    if option.repeatable:
        return tuple(value)
    try:
        converted = option.type(value)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{option.flag}: {value!r} is not a valid {option.type.__name__}") from exc
    if option.choices and converted not in option.choices:
        raise pytest.UsageError(f"{option.flag}: {value!r} is not one of {', '.join(option.choices)}")
    if option.rule is not None and not option.rule[0](converted):
        raise pytest.UsageError(f"{option.flag}: {value!r} must be {option.rule[1]}")
    return converted


@dataclass(frozen=True)
class Settings:
    """Everything a run was asked to do, resolved once at configure time."""

    model: str
    api_base: str | None
    model_revision: str | None
    router_path: Path | None
    judge_model: str | None  # the first judge (the default patient agent), None for the offline judge
    judge_api_base: str | None
    agent_model: str | None
    prompts: str
    evidence_dir: Path | None
    data_dir: Path
    data_dir_explicit: bool
    report_path: Path | None
    samples_path: Path | None
    html_path: Path | None
    progress: str
    cache_path: Path | None
    timeout_s: float
    retries: int
    backoff_s: float
    concurrency: int
    rpm: int | None
    tpm: int | None
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    limit: int | None
    epochs: int
    protocol: str
    shots: int | None
    scoring: str
    gates: tuple[Gate, ...]
    model_aliases: dict[str, str]
    baseline_path: Path | None
    max_drop: float
    alpha: float
    judge_models: tuple[str, ...] = ()  # every --judge-model, as written (MODEL or MODEL@URL)
    judge_check: dict | None = None  # the figures of --medbench-judge-check

    @property
    def judged_by_verdict(self) -> bool:
        """With gates or a baseline, the exit code is their verdict, not the items' pass/fail."""
        return bool(self.gates or self.baseline_path)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        from .data.files import bundled_fixtures

        values = {option.dest: option_value(config, option) for option in OPTIONS}
        table = pyproject_table(config)
        rootdir = Path(str(config.rootpath))

        def path(dest: str) -> Path | None:
            value = values[dest]
            return Path(value).expanduser().absolute() if value else None

        data_dir = path("medbench_data")
        cache_path = (
            None
            if values["medbench_no_cache"]
            else (path("medbench_cache") or rootdir / ".medbench_cache" / "responses.sqlite3")
        )
        judges = values["medbench_judge_model"] or ()
        first_judge = split_judge(judges[0])[0] if judges else None
        check_output_paths(
            {
                flag: path(Option(flag, "").dest)
                for flag in ("--medbench-report", "--medbench-samples", "--medbench-html")
            },
            {"--medbench-cache": cache_path, "--medbench-baseline": path("medbench_baseline")},
        )
        return cls(
            model=values["medbench_model"],
            api_base=values["medbench_api_base"],
            model_revision=values["medbench_model_revision"],
            router_path=path("medbench_model_router"),
            judge_model=first_judge,
            judge_models=tuple(judges),
            judge_check=_judge_check(path("medbench_judge_check")),
            judge_api_base=values["medbench_judge_api_base"],
            agent_model=values["medbench_agent_model"] or first_judge,
            prompts=values["medbench_prompts"],
            evidence_dir=path("medbench_evidence_dir"),
            data_dir=data_dir or bundled_fixtures(),
            data_dir_explicit=data_dir is not None,
            report_path=path("medbench_report"),
            samples_path=path("medbench_samples"),
            html_path=path("medbench_html"),
            progress=values["medbench_progress"],
            cache_path=cache_path,
            timeout_s=values["medbench_timeout"],
            retries=values["medbench_retries"],
            backoff_s=values["medbench_backoff"],
            concurrency=values["medbench_concurrency"],
            rpm=values["medbench_rpm"],
            tpm=values["medbench_tpm"],
            temperature=values["medbench_temperature"],
            max_tokens=values["medbench_max_tokens"],
            seed=values["medbench_seed"],
            limit=values["medbench_limit"],
            epochs=values["medbench_epochs"],
            protocol=values["medbench_protocol"],
            shots=values["medbench_shots"],
            scoring=values["medbench_scoring"],
            gates=tuple(_parse_gates(gate_texts(config, table))),
            model_aliases=dict(table.get("models", {})),
            baseline_path=path("medbench_baseline"),
            max_drop=values["medbench_max_drop"],
            alpha=values["medbench_alpha"],
        )


def _judge_check(path: Path | None) -> dict | None:
    """The figures of a ``medbench judge-check --json`` file, checked now so a bad one fails early."""
    if path is None:
        return None
    import json

    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise pytest.UsageError(f"--medbench-judge-check {path}: {exc}") from None
    if not isinstance(figures, dict) or not {"kinds", "passed", "judges"} <= figures.keys():
        raise pytest.UsageError(f"--medbench-judge-check {path}: not a 'medbench judge-check --json' file")
    return figures


def split_judge(text: str) -> tuple[str, str | None]:
    """``MODEL@URL`` -> (MODEL, URL); a plain model name -> (name, None). Only an ``@`` that starts an
    http(s) URL splits, so model ids with an ``@`` of their own (``claude-3@20240229``) stay whole."""
    for scheme in ("@http://", "@https://"):
        if (at := text.find(scheme)) > 0:
            return text[:at], text[at + 1 :]
    return text, None


def shown_judge(text: str) -> str:
    """A ``--judge-model`` as output shows it: ``MODEL@URL`` without the URL's ``user:pw@``."""
    model, url = split_judge(text)
    return f"{model}@{without_userinfo(url)}" if url else model


def check_output_paths(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Usage errors now, not a traceback (or a file written over) after every item has run: an
    output path that cannot be written, or one that another output, the cache or the baseline also
    names (a report written over its own baseline compares the run with itself)."""
    taken = {path.resolve(): flag for flag, path in inputs.items() if path is not None}
    for flag, path in outputs.items():
        if path is None:
            continue
        try:
            _check_output_path(flag, path)
        except OSError as exc:  # a name the file system refuses (too long, ...)
            raise pytest.UsageError(f"{flag} {path}: {exc.strerror or exc}") from None
        if (other := taken.setdefault(path.resolve(), flag)) != flag:
            raise pytest.UsageError(f"{flag} {path}: {other} names that file too; give each its own")


def _check_output_path(flag: str, path: Path) -> None:
    if path.is_dir():
        raise pytest.UsageError(f"{flag} {path}: is a directory; give a file name")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise pytest.UsageError(f"{flag} {path}: {folder} is a file, not a directory")
    if not os.access(folder, os.W_OK):
        raise pytest.UsageError(f"{flag} {path}: cannot write in {folder}")


def _parse_gates(texts: list[str]) -> list[Gate]:
    from .report.gates import Gate, GateError

    try:
        return [Gate.parse(text) for text in texts]
    except GateError as exc:
        raise pytest.UsageError(str(exc)) from None
