"""What can still change the verdict: which finalists keep training, seed by seed and in the LR check.

Pure functions over scores (no training). The verdict (``study.verdict.decide``) compares
the best searched finalist with the best tuned baseline on validation, paired by seed; a
finalist that can no longer be either side's best, and a verdict whose outcome can no
longer change, need no more runs.

**Seeds in rounds** (:func:`still_running`). Every finalist trains ``FIRST_ROUND`` seeds,
then one seed more per round, up to the study's ``rescore_seeds``. After each round:

- a finalist is *dropped* once its paired ``CONFIDENCE`` upper bound against the leader of
  its own side (searched or baseline: the best mean among those still running) is below
  zero: it cannot be the configuration its side sends to the verdict;
- the verdict is *decided* (nobody trains more seeds) when fewer than two finalists are
  left, or when a baseline leads its side and every searched finalist still running has a
  paired upper bound against that baseline below zero: no searched schedule can then be
  claimed to beat it, so the outcome is "no gain" whatever further seeds would show.

A gain is never decided early: it is only claimed over all ``rescore_seeds`` seeds, the
ones both compared configurations ran (the leaders of both sides are never dropped).

**The LR check** (:func:`lr_checks_due`). Every finalist first trains at its own LR; the
other LRs are tried for each side's leader at its own LR, and then for every finalist of
a side whose own-LR mean plus the best improvement an LR change has brought any finalist
so far would reach that side's best mean yet. The rest keep their LR: no change of LR seen
in this check would bring them within reach of their side's leader.
"""

from __future__ import annotations

from typing import Sequence

from autolr.study.verdict import counted, failure_score, mean, paired_gain

FIRST_ROUND = 2  # seeds every finalist trains before any is dropped: a paired interval needs two


def still_running(val_scores: Sequence[Sequence[float]], baseline: Sequence[bool], maximize: bool,
                  resolution: float = 0.0) -> list[int]:
    """The finalists that train the next seed (indices), given each one's validation scores so far.

    ``val_scores[i]``: finalist ``i``'s scores over the seeds it trained, in seed order (a
    dropped finalist's list stops where it was dropped; NaN where a run failed).
    ``baseline[i]``: whether it is a tuned baseline. ``resolution``: the score's step, the floor
    of the paired spread as in the verdict (seeds that tie to one image drop nobody). Empty when
    the verdict is decided.
    """
    trained = max((len(scores) for scores in val_scores), default=0)
    running = [index for index, scores in enumerate(val_scores) if len(scores) == trained]
    if trained < FIRST_ROUND:
        return running
    failed_at = failure_score(val_scores, maximize)
    scores = [counted(row, failed_at) for row in val_scores]
    sign = 1.0 if maximize else -1.0
    leaders = {side: max((i for i in running if baseline[i] == side), key=lambda i: (sign * mean(scores[i]), -i),
                         default=None) for side in (False, True)}

    def behind(index: int, leader: int | None) -> bool:
        high = None if leader is None else paired_gain(scores[index], scores[leader], maximize, resolution).high
        return high is not None and high < 0

    kept = [i for i in running if i == leaders[baseline[i]] or not behind(i, leaders[baseline[i]])]
    searched = [i for i in kept if not baseline[i]]
    if len(kept) < 2 or (leaders[True] is not None and searched
                         and all(behind(i, leaders[True]) for i in searched)):
        return []
    return kept


def lr_checks_due(own_lr: Sequence[Sequence[float]], best_checked: Sequence[float | None], baseline: Sequence[bool],
                  maximize: bool, failed_at: float) -> list[int]:
    """The finalists whose other LRs the LR check should try next (indices; empty: the check is done).

    ``own_lr[i]``: finalist ``i``'s LR-check scores at its own LR; ``best_checked[i]``: its best
    mean over every LR tried, or None while only its own LR was (NaN counts at ``failed_at``).
    """
    sign = 1.0 if maximize else -1.0
    own = [sign * mean(counted(row, failed_at)) for row in own_lr]
    best = [own[i] if checked is None else sign * checked for i, checked in enumerate(best_checked)]
    reach = max((best[i] - own[i] for i, checked in enumerate(best_checked) if checked is not None), default=0.0)
    due = []
    for side in (False, True):
        members = [i for i in range(len(own)) if baseline[i] == side]
        if not members:
            continue
        unchecked = [i for i in members if best_checked[i] is None]
        if all(best_checked[i] is None for i in members):
            due.append(max(members, key=lambda i: (own[i], -i)))  # the side's leader at its own LR
            continue
        top = max(best[i] for i in members)
        due += [i for i in unchecked if own[i] + reach >= top]
    return sorted(due)
