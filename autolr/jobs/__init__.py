"""What trains a study's schedules: one :class:`autolr.trials.Job` per kind of study.

``builtin`` (a built-in dataset and model, trained as populations), ``module`` (the user's
``nn.Module`` trained as populations through torch.func) and ``objective`` (the user's own
training function, one run at a time). The study pipeline and the engines receive a Job
ready to run; ``population`` holds what the two population jobs share.
"""
