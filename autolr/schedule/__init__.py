"""A schedule as data and as torch objects: ScheduleSpec, the optimizers a spec names, torch schedulers, export."""
