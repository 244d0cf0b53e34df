"""Training: ``run_trial(pipeline, data)`` yields one EpochMetrics per epoch;
``train_pipeline`` trains an exported pipeline and saves weights, metrics and label issues."""

from automl_noisy.train.final import train_pipeline
from automl_noisy.train.trainer import EpochMetrics, Trainer, TrainingDiverged, run_trial

__all__ = ["EpochMetrics", "Trainer", "TrainingDiverged", "run_trial", "train_pipeline"]
