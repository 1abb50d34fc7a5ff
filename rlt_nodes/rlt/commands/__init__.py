"""Subcommands of the `rlt` CLI: each module has `add_arguments(parser)` and `run(args) -> int`, light imports."""
