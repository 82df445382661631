"""The one study pipeline: range test, tuned-baseline ladders, search, re-scoring, verdict, report.

Every study runs through :func:`autolr.pipeline.run.run_pipeline`, whatever trains it (a
built-in population, the user's module as a population, the user's objective: a
``trials.Job``) and whichever engine stores and samples it (``autolr.backends``). It sits
above the engines and the report; the study core (``autolr.study``) below them holds no I/O.
"""
