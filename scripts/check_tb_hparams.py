#!/usr/bin/env python3
"""Reads runs' TensorBoard event files with TensorBoard itself and prints what the HParams
dashboard will show: per run, its hyperparameters, metrics and session status (STATUS_SUCCESS
once the run finished its budget; none while it runs or after it stopped early, e.g. with
--stop-after), then the dashboard's own session list for the whole directory. Exit status 1
when a run has no hparams summaries or the dashboard lists no session.

    pip install tensorboard          # checked with tensorboard 2.21
    python3 scripts/check_tb_hparams.py runs/tiny        # one run
    python3 scripts/check_tb_hparams.py runs/ -v         # every run below runs/, with values
"""
import argparse
import os
import sys
from datetime import datetime, timezone

from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups, metadata


def run_dirs(logdir):
    """Directories below `logdir` (itself included) that hold event files."""
    for path, _, files in sorted(os.walk(logdir)):
        if any(".tfevents." in f for f in files):
            yield path


def status_text(end):
    if end is None:
        return "no session end (still running, or stopped early)"
    when = datetime.fromtimestamp(end.end_time_secs, timezone.utc).isoformat(timespec="seconds")
    return f"{api_pb2.Status.Name(end.status)} (ended {when})"


def check_run(path, verbose):
    """One run as TensorBoard's event reader sees it; False when it has no hparams."""
    acc = EventAccumulator(path)
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    if metadata.SESSION_START_INFO_TAG not in content:
        print(f"{path}: no hparams summaries")
        return False
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = content.get(metadata.SESSION_END_INFO_TAG)
    end = end and metadata.parse_session_end_info_plugin_data(end)
    metrics = ", ".join(m.name.tag for m in experiment.metric_infos)
    print(f"{path}: {len(experiment.hparam_infos)} hyperparameters, metrics: {metrics}; "
          f"status: {status_text(end)}")
    for name, value in sorted(start.hparams.items()) if verbose else []:
        print(f"  {name} = {getattr(value, value.WhichOneof('kind'))}")
    return True


def dashboard_sessions(logdir):
    """The HParams dashboard's session list (its ListSessionGroups request, every status)."""
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, logdir)
    tb = base_plugin.TBContext(logdir=logdir, multiplexer=mux, data_provider=provider)
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=1000, allowed_statuses=api_pb2.Status.values())
    handler = list_session_groups.Handler(
        context.RequestContext(), backend_context.Context(tb), "", request)
    return [(s, len(g.hparams)) for g in handler.run().session_groups for s in g.sessions]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every value")
    args = parser.parse_args()
    ok = all([check_run(path, args.verbose) for path in run_dirs(args.logdir)])
    sessions = dashboard_sessions(args.logdir)
    print(f"dashboard: {len(sessions)} sessions")
    for session, n in sessions:
        print(f"  {session.name or '.'}: {n} hyperparameters, "
              f"status {api_pb2.Status.Name(session.status)}")
    if not ok or not sessions:
        sys.exit(1)


if __name__ == "__main__":
    main()
