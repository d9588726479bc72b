"""inpaintbench: train (when the model trains) and score one model.

    python bench.py                                   # DeepFill v2 on the embedded photos
    python bench.py model=telea                       # a baseline, scored in seconds
    python bench.py model=deepfill_v2 train.steps=50 data.resolution=64
    python bench.py -m model=mean_fill,telea,deepfill_v2   # a sweep
    python bench.py --help                            # every group and option

Everything a run produces lands in its Hydra output directory (printed at the end).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from benchmarks.config import register_configs

log = logging.getLogger("inpaintbench")
register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="bench")
def main(cfg: DictConfig) -> float | None:
    from benchmarks.run import record_failure, run

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    sweeping = hc.mode == RunMode.MULTIRUN
    previous = run_dir / "metrics.json"
    if sweeping and previous.exists() and json.loads(previous.read_text())["status"] == "ok":
        log.info("skipping %s: finished results exist in %s", cfg.model.name, run_dir)
        return None
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    try:
        record = run(cfg, run_dir)
    except Exception as exc:
        record_failure(run_dir, cfg, exc)
        log.error("run failed: %s: %s (recorded in %s)", type(exc).__name__, exc, previous)
        if sweeping:  # one failing job must not stop the others
            return None
        raise
    if record["status"] != "ok":  # a DDP rank > 0 only trained; rank 0 reports
        return None
    o = record["overall"]
    log.info(
        "%s on %s/%s: PSNR %.2f dB (hole %.2f), SSIM %.4f, L1 %.4f (hole %.4f), LPIPS %s",
        cfg.model.name,
        cfg.data.name,
        cfg.mask.name,
        o["psnr"],
        o["psnr_hole"],
        o["ssim"],
        o["l1"],
        o["l1_hole"],
        f"{o['lpips']:.4f}" if record["lpips"]["available"] else "n/a",
    )
    for name, b in record.get("baselines", {}).items():
        log.info(
            "  %s on the same test images: PSNR %.2f dB (hole %.2f), SSIM %.4f",
            name,
            b["psnr"],
            b["psnr_hole"],
            b["ssim"],
        )
    log.info("results in %s", run_dir)
    return o["psnr"]


if __name__ == "__main__":
    sys.exit(main())
