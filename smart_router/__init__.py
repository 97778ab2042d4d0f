"""The `smart-router` command line: one entry point for every deployable's commands."""
