"""Search: space files, the ask/tell driver, executors, storage and export."""

import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
# The driver records heartbeats itself (ask/tell), and the spaces use TPE's experimental but
# long-standing ``group`` option: neither needs a warning on every run.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
