"""The collector, on the controller: every item's record as it arrives, for the report, and the
samples file (``--medbench-samples``), which also lists the selected items that produced none."""

from __future__ import annotations

from pathlib import Path

from ..report.records import ItemRecord
from ..report.samples import SamplesWriter


class Collector:
    """The records of the run, by item key; with a samples path, each written as it arrives."""

    def __init__(self, samples_path: Path | None) -> None:
        self.records: dict[tuple[str, str, str], ItemRecord] = {}
        self._samples = SamplesWriter(samples_path) if samples_path else None

    def collect(self, record: ItemRecord) -> None:
        self.records[record.key] = record
        if self._samples is not None:
            self._samples.write(record)

    def note_missing(self, missing: list[ItemRecord]) -> None:
        """List the selected items that produced no record in the samples file (``"missing": true``);
        with no record at all, the earlier samples file is left as it was."""
        if self._samples is not None and self.records:
            for record in missing:
                self._samples.write(record, missing=True)

    def close(self) -> None:
        """At the end of the run: the samples file is complete."""
        if self._samples is not None:
            self._samples.close()
