"""A built-in study: its config, the one pipeline for every engine, its steps, re-scoring and the engine protocol."""
