"""Training: the built-in models, one trial, K trials at once as a population, a user's module as a population."""
