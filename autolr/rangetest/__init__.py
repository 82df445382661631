"""The LR range test: the run, the reading of its curve, how sure the reading is, and its plots."""
