#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with TensorBoard itself and prints the hyperparameters
the HParams dashboard will show (exit 1 when there are none).

    pip install tensorboard
    python3 scripts/check_tb_hparams.py runs/tiny
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata


def main():
    acc = EventAccumulator(sys.argv[1])
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    if not content:
        sys.exit(f"{sys.argv[1]}: no hparams summaries")
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    print(f"{len(experiment.hparam_infos)} hyperparameters, metrics: "
          + ", ".join(m.name.tag for m in experiment.metric_infos))
    for name, value in sorted(start.hparams.items()):
        kind = value.WhichOneof("kind")
        print(f"  {name} = {getattr(value, kind)}")


if __name__ == "__main__":
    main()
