"""Developer tools for sagabank, outside the product package: `sagabank chaos`, `sagabank bench`.

They are clients of the product: they may import `repository_after`, which never imports them.
`sagabank` finds them through the `sagabank.commands` entry points (pyproject.toml,
`repository_after/entrypoints/tool_commands.py`); the Docker image does not ship them.
"""
