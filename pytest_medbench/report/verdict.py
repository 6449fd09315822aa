"""The deployment verdict: gates and baseline regressions -> pass or fail, one line, and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from .compare import Comparison, NotCompared, regressions, shortfall
from .gates import GateResult


@dataclass
class Verdict:
    gates: list[GateResult]
    comparisons: list[Comparison]
    max_drop: float
    alpha: float
    baseline: str | None = None
    problems: list[str] = field(default_factory=list)  # failures that are not the model's (data, harness)
    not_compared: list[NotCompared] = field(default_factory=list)  # the baseline's, that could not be

    @property
    def failed_gates(self) -> list[GateResult]:
        return [result for result in self.gates if not result.passed]

    @property
    def regressions(self) -> list[Comparison]:
        return regressions(self.comparisons, self.max_drop, self.alpha)

    @property
    def shortfall(self) -> list[str]:
        """With a baseline: what it could not be compared on (nothing at all, or some of its metrics)."""
        return shortfall(self.comparisons, self.not_compared) if self.baseline else []

    @property
    def passed(self) -> bool:
        return not (self.failed_gates or self.regressions or self.shortfall or self.problems)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def line(self) -> str:
        if self.passed:
            checks = [f"{len(self.gates)} gates hold"] if self.gates else []
            if self.baseline:
                checks.append(f"no significant drop over {self.max_drop:g} points against {self.baseline}")
            return "medbench verdict: PASS (" + "; ".join(checks) + ")"
        reasons = [f"gate {result.describe()}" for result in self.failed_gates]
        reasons += [
            f"{c.path} dropped {-c.delta:.2f} points (p={c.p_value:.3g}, BH-adjusted {c.p_adjusted:.3g})"
            for c in self.regressions
        ]
        reasons += self.shortfall
        reasons += self.problems
        return "medbench verdict: FAIL: " + "; ".join(reasons)

    def markdown(self, categories: list[dict]) -> str:
        lines = [f"## {self.line()}", ""]
        if self.gates:
            lines += ["| gate | value | result |", "|---|---|---|"]
            for result in self.gates:
                value = "not computed" if result.value is None else f"{result.value:g}"
                lines.append(f"| `{result.gate}` | {value} | {'pass' if result.passed else '**FAIL**'} |")
            lines.append("")
        if self.comparisons:
            lines += [
                f"Against `{self.baseline}` (max drop {self.max_drop:g} points, alpha {self.alpha:g}):",
                "",
            ]
            lines += [
                "| metric | baseline | current | delta | 95% CI | p | p (BH) | n | verdict |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for c in self.comparisons:
                verdict = c.verdict(self.max_drop, self.alpha)
                verdict = "**REGRESSED**" if verdict == "regressed" else verdict
                scope = "" if c.scope == "task" else f" ({c.scope})"
                lines.append(
                    f"| {c.path}{scope} | {c.old:.2f} | {c.new:.2f} | {c.delta:+.2f} | "
                    f"[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}] | {c.p_value:.4f} | {c.p_adjusted:.4f} | "
                    f"{c.n_shared} | {verdict} |"
                )
            lines.append("")
        if self.baseline and self.not_compared:
            lines += [f"Not compared with `{self.baseline}`:", "", "| metric | why |", "|---|---|"]
            lines += [f"| {entry.path} | {entry.reason} |" for entry in self.not_compared]
            lines.append("")
        lines += ["| category | n | errors | metrics |", "|---|---|---|---|"]
        for entry in categories:
            metrics = ", ".join(f"{name} {m['value']:.1f}" for name, m in entry["metrics"].items())
            lines.append(
                f"| {entry['benchmark']}.{entry['category']} | {entry['n']} | {entry['errors']} | {metrics} |"
            )
        return "\n".join(lines) + "\n"
