"""Experiments: several pipelines on one dataset split, compared with significance tests."""

from embedlab.experiment.config import ExperimentConfig, PipelineConfig, load_config, parse_config

__all__ = ["ExperimentConfig", "PipelineConfig", "load_config", "parse_config"]
