"""Command implementations behind the CLI, one module per command family; `router` dispatches."""
