"""The `llmops` command line. Each subcommand lives in its own module in this package and
registers itself through `register(subparsers)`; main.py only lists the module names."""
