"""What a search searches: the search space and the tuned baselines queued beside it."""
