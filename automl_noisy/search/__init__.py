"""Search: space files, the ask/tell driver, executors, storage and export."""
