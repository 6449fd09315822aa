"""``medbench judge-check``: measure a judge (or a jury) before anyone trusts its MedR-Bench verdicts.

The sanity set is built from the data's own diagnosis cases. For each case the judge sees the case's
reference as the answer, verbatim and lightly rewritten (case, punctuation), which it must accept,
and three answers it must reject: another case's reference from a different body system, the
negated reference, and a hedge listing the reference among other diagnoses. An unparseable verdict
counts in its own rate and, conservatively, as a wrong verdict too. Human verdicts (``--labels``)
add accuracy and Cohen's kappa against the humans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.medr import Case
from ..models.errors import ModelCallError
from ..report.agreement import cohen_kappa

SHOULD_ACCEPT = ("verbatim", "rewritten")
SHOULD_REJECT = ("other_system", "negated", "hedge")


class CheckError(Exception):
    """A usage error: bad labels file, unknown case, no cases to build the sanity set from."""


@dataclass(frozen=True)
class Probe:
    kind: str
    case: Case
    answer: str


def _rewritten(reference: str) -> str:
    """The reference in lower case without punctuation (upper case if that changes nothing)."""
    plain = " ".join(re.sub(r"[^\w\s]", " ", reference).lower().split())
    return plain if plain != reference else reference.upper()


def sanity_set(cases: list[Case]) -> list[Probe]:
    """Five probes per diagnosis case (``other_system`` only where a case of another system exists)."""
    diagnosis = [case for case in cases if case.kind == "diagnosis" and case.reference.strip()]
    if len(diagnosis) < 3:
        raise CheckError("the sanity set needs at least 3 diagnosis cases in the data directory")
    probes = []
    for index, case in enumerate(diagnosis):
        others = diagnosis[index + 1 :] + diagnosis[:index]
        probes += [
            Probe("verbatim", case, case.reference),
            Probe("rewritten", case, _rewritten(case.reference)),
        ]
        apart = next(
            (o for o in others if o.body_systems and not set(o.body_systems) & set(case.body_systems)), None
        )
        if case.body_systems and apart is not None:
            probes.append(Probe("other_system", case, apart.reference))
        probes.append(Probe("negated", case, f"Not {case.reference}"))
        probes.append(
            Probe("hedge", case, f"{others[0].reference}, {case.reference} or {others[1].reference}")
        )
    return probes


def _verdict(judge: Any, case: Case, answer: str) -> bool | None:
    """The judge's verdict on ``answer`` for ``case``; None when it gave no parseable verdict."""
    try:
        if case.kind == "treatment":
            return judge.treatment_correct(answer, case.reference, case)
        return judge.diagnosis_correct(answer, case.reference)
    except ModelCallError as exc:
        if exc.kind == "judge_unparseable":
            return None
        raise


def _rates(probes: list[Probe], verdicts: list[bool | None]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for kind in (*SHOULD_ACCEPT, *SHOULD_REJECT):
        given = [v for p, v in zip(probes, verdicts, strict=True) if p.kind == kind]
        if not given:
            continue
        entry: dict[str, Any] = {
            "n": len(given),
            "unparseable_rate": sum(v is None for v in given) / len(given),
        }
        if kind in SHOULD_ACCEPT:
            entry["false_negative_rate"] = sum(v is not True for v in given) / len(given)
        else:
            entry["false_positive_rate"] = sum(v is not False for v in given) / len(given)
        kinds[kind] = entry
    return kinds


def read_labels(path: Path, cases: dict[str, Case]) -> list[tuple[Case, str, bool]]:
    """(case, answer, human verdict) per line of a labels file; a bad line is a CheckError naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckError(f"--labels {path}: {exc}") from exc
    labels = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case, answer, verdict = cases[row["case"]], str(row["answer"]), str(row["verdict"]).lower()
        except json.JSONDecodeError as exc:
            raise CheckError(f"{path} line {number}: not JSON ({exc})") from exc
        except KeyError as exc:
            raise CheckError(f"{path} line {number}: no {exc} (case must be in the data)") from exc
        except TypeError as exc:
            raise CheckError(f"{path} line {number}: not an object") from exc
        if verdict not in ("correct", "wrong"):
            raise CheckError(
                f"{path} line {number}: verdict must be Correct or Wrong, not {row['verdict']!r}"
            )
        labels.append((case, answer, verdict == "correct"))
    if not labels:
        raise CheckError(f"--labels {path}: no labelled answers")
    return labels


def judge_check(
    judge: Any,
    cases: list[Case],
    labels: list[tuple[Case, str, bool]] | None,
    max_fpr: float,
    max_fnr: float,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """The figures of one check: rates per probe kind, agreement with humans, and the verdict."""
    probes = sanity_set(cases)
    verdicts = []
    for number, probe in enumerate(probes, start=1):
        verdicts.append(_verdict(judge, probe.case, probe.answer))
        if number % 25 == 0:
            progress(f"{number}/{len(probes)} probes judged")
    kinds = _rates(probes, verdicts)
    failed = [
        kind
        for kind, entry in kinds.items()
        if entry.get("false_positive_rate", 0.0) > max_fpr or entry.get("false_negative_rate", 0.0) > max_fnr
    ]
    figures: dict[str, Any] = {"kinds": kinds, "limits": {"max_fpr": max_fpr, "max_fnr": max_fnr}}
    if labels:
        judged = [_verdict(judge, case, answer) for case, answer, _ in labels]
        humans = [verdict for _, _, verdict in labels]
        machine = [verdict if verdict is not None else "unparseable" for verdict in judged]
        figures["labels"] = {
            "n": len(labels),
            "accuracy": sum(m == h for m, h in zip(machine, humans, strict=True)) / len(labels),
            "cohen_kappa": cohen_kappa(machine, humans),
            "unparseable_rate": sum(v is None for v in judged) / len(labels),
        }
    figures["failed_kinds"] = failed
    figures["passed"] = not failed
    return figures


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The check as a table: one line per probe kind, then the humans' agreement."""
    lines = [f"{'kind':<14}{'n':>5}  {'false pos':>9}  {'false neg':>9}  {'unparseable':>11}"]
    for kind, entry in figures["kinds"].items():
        fpr, fnr = entry.get("false_positive_rate"), entry.get("false_negative_rate")
        cells = [f"{'' if rate is None else f'{100 * rate:.1f}%':>9}" for rate in (fpr, fnr)]
        lines.append(
            f"{kind:<14}{entry['n']:>5}  {cells[0]}  {cells[1]}  {100 * entry['unparseable_rate']:>10.1f}%"
        )
    if "labels" in figures:
        found = figures["labels"]
        kappa = "undefined" if found["cohen_kappa"] is None else f"{found['cohen_kappa']:.3f}"
        lines.append(
            f"against {found['n']} human verdicts: accuracy {100 * found['accuracy']:.1f}%, kappa {kappa}"
        )
    limits = figures["limits"]
    verdict = "PASS" if figures["passed"] else "FAIL: " + ", ".join(figures["failed_kinds"])
    lines.append(
        f"medbench judge-check: {verdict} (max FPR {limits['max_fpr']:g}, max FNR {limits['max_fnr']:g})"
    )
    return lines


def build_judge(models: list[str], api_base: str | None) -> Any:
    """The judge (one model) or the jury (several) the check measures, as a run would build it."""
    from ..models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
    from ..options import split_judge
    from ..prompts.medr import MedrPrompts
    from .evidence import NO_EVIDENCE
    from .jury import Jury
    from .llm import JUDGE_TEMPERATURE, LLMJudge

    judges = []
    for text in models:
        model, own_base = split_judge(text)
        client = ModelClient(
            ModelSpec.parse(model, own_base or api_base),
            GenerationParams(temperature=JUDGE_TEMPERATURE),
            cache=None,
            timeout_s=120.0,
            retry=RetryPolicy(),
        )
        judges.append(
            LLMJudge(
                lambda messages, c=client: c.complete(messages).text, MedrPrompts(), lambda q: NO_EVIDENCE
            )
        )
    return judges[0] if len(judges) == 1 else Jury(judges)


def run_check(args: Any) -> int:
    """``medbench judge-check``: 0 when every rate is within its limit, 1 when not, 2 on usage errors."""
    import os
    import sys

    from ..data.files import DATA_ENV, bundled_fixtures
    from ..data.medr import load_medr

    data_dir = Path(args.medbench_data or os.environ.get(DATA_ENV) or bundled_fixtures())
    if not data_dir.is_dir():
        raise CheckError(f"--medbench-data {data_dir}: no such directory")
    cases, errors = load_medr(data_dir)
    if errors:
        raise CheckError(f"--medbench-data {data_dir}: {errors[0]}")
    labels = read_labels(Path(args.labels), {case.case_id: case for case in cases}) if args.labels else None
    from ..models.secrets import mask, register_url, without_userinfo
    from ..options import split_judge

    # a password in a judge's URL is masked in everything this command prints or writes, as in a run
    judge_urls = [split_judge(text)[1] for text in args.judge_model]
    for url in (args.judge_api_base, *judge_urls):
        register_url(url)
    judge = build_judge(args.judge_model, args.judge_api_base)
    try:
        figures = judge_check(
            judge, cases, labels, args.max_fpr, args.max_fnr, lambda line: print(mask(line), file=sys.stderr)
        )
    except ModelCallError as exc:
        raise CheckError(mask(f"the judge could not be asked: {exc}")) from exc
    judges = [
        model if url is None else f"{model}@{without_userinfo(url)}"
        for model, url in map(split_judge, args.judge_model)
    ]
    figures = {"judges": judges, "data": str(data_dir), **figures}
    print(mask("\n".join(report_lines(figures))))
    if args.json:
        Path(args.json).write_text(mask(json.dumps(figures, indent=1)) + "\n", encoding="utf-8")
    return 0 if figures["passed"] else 1
