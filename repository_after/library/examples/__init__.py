"""Worked examples of the saga library (`repository_after.library`)."""
