"""Hydra callback: write the comparison report when a multirun (sweep) ends.

Configured in ``conf/bench.yaml`` (``hydra.callbacks.report``): by default every sweep gets
``<sweep dir>/report/``; the experiments in ``conf/experiment/`` write ``reports/<name>/``.
The report is :func:`benchmarks.report.write_report` over the sweep folder, i.e. exactly what
``python -m benchmarks.report <sweep dir> --name <name> --out <out>`` writes.  A failure to
write it is logged and does not fail the sweep (the runs' results are already on disk).
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

__all__ = ["ReportCallback"]

log = logging.getLogger("inpaintbench")


class ReportCallback(Callback):
    """``on_multirun_end``: collect the sweep's runs into ``<out>/<name>/``.

    Args:
        out: parent folder of the report (relative to the launch directory).
        name: report folder name (``None``: the sweep folder's name).
        enabled: ``false`` turns the report off (``hydra.callbacks.report.enabled=false``).
        grid_rows: test images in the qualitative grid.
    """

    def __init__(
        self,
        out: str = "reports",
        name: str | None = None,
        enabled: bool = True,
        grid_rows: int = 6,
    ) -> None:
        self.out, self.name, self.enabled, self.grid_rows = out, name, enabled, grid_rows

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        from .report import write_report

        sweep_dir = config.hydra.sweep.dir
        try:
            folder = write_report([sweep_dir], self.name, self.out, self.grid_rows)
        except Exception as exc:  # noqa: BLE001 - the sweep's results are on disk regardless
            log.error(
                "could not write the report of %s: %s: %s", sweep_dir, type(exc).__name__, exc
            )
            return
        log.info("report of %s written to %s", sweep_dir, folder)
