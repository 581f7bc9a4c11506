"""One training job as the app's pages and reproductions submit it: which run, which data, which typed
configs, which device. `vae.job_process.job_line` turns it into the training process's JSON line, and
`read_job` back; the job registry (`vae.jobs`) runs it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig, ModelSettings, RunSettings, TrainConfig


@dataclass
class JobSpec:
    """A training job as pages and reproductions submit it; `job_process.job_line` turns it into the child's line."""
    run_name: str
    dataset: str  # a built-in name or the path of a user file
    model: ModelSettings  # the image shape comes from the data, in the training process
    train: TrainConfig
    resume: bool = False
    data_dir: str | None = None
    device: str = "cpu"  # cpu, auto (CUDA when present), cuda

    def __post_init__(self):
        if isinstance(self.model, ModelConfig):  # a checkpoint's config: its data decides the image shape again
            self.model = self.model.settings
        if not isinstance(self.model, ModelSettings) or not isinstance(self.train, TrainConfig):
            raise TypeError(f"a JobSpec carries a ModelSettings and a TrainConfig, got {type(self.model).__name__} "
                            f"and {type(self.train).__name__}.")
        RunSettings(device=self.device)  # refused in one sentence: device must be cpu, cuda or auto
