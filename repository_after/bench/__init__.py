"""`sagabank bench`: side-by-side benchmarks that print figures (never timed assertions)."""
