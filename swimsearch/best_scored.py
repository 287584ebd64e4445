"""The most similar picture by its own score stands near the top of the list, whatever the ranking says.

The list reads band by band, by the ranking inside a band (ranking.py): query
expansion and the augmented vectors rank a design's look-alikes well (mAP@10
1.076 x exact cosine), but they can pull away from a picture that is simply
the most alike. A crop (80 %) of a photo of a plain garment read 71.5 % with
its original, more than any other catalogue picture (60-68 %), and exact
cosine put it second; the expanded query, drawn to ten look-alikes, ranked
it 233rd, off the page. So the candidate that reads the highest score outside
*same design* (whose list is ordered by score already) is lifted, inside its
band, to at most position `within` of the list; where its band starts lower
down, to the band's first place, when it reads `lead` points more than those it
passes, in the whole percents a user reads. The ranking of everything else is kept.
"""

from __future__ import annotations

import numpy as np

from .calibration import whole_percents


def lifted(ranking: np.ndarray, scores: np.ndarray, groups: np.ndarray, order: np.ndarray, *, within: int,
           others: np.ndarray, lead: float = 0.0) -> np.ndarray:
    """`ranking` with the best-scored candidate of `others` raised so that it stands at most at position
    `within` (1-based) of `order`, inside its group, where it reads at least `lead` whole percents more, as
    shown (calibration.whole_percents), than every candidate of `others` standing there or above.

    Args:
        ranking: (m,) the candidates' ranking (higher first inside a group); not changed.
        scores: (m,) the scores shown (0..1).
        groups: (m, k) what orders the list before the ranking (duplicate, band, same-design rank): the
            candidate moves only among candidates of its own group (rows equal there).
        order: the list's rows in the order it reads (a subset of 0..m-1).
        within: the position the best-scored candidate may stand at, at the lowest (0: no lift).
        lead: how many points more it must read, as shown, than those it would stand above.
        others: (m,) bool, the candidates that may be lifted (not the query, an identical copy, a duplicate
            or a same-design match).

    Returns: the ranking to order by (a copy when changed).
    """
    allowed = order[others[order] & np.isfinite(scores[order])]  # a score that is not a number is never the best
    if within <= 0 or not len(allowed):
        return ranking
    best = int(allowed[np.argmax(scores[allowed])])  # the first of the list among equal scores
    at = int(np.flatnonzero(order == best)[0])
    mates = np.flatnonzero(np.all(groups[order] == groups[best], axis=1))  # its group's positions in the list (contiguous)
    target = max(within - 1, int(mates[0]))
    if at <= target:
        return ranking
    passed = order[: target + 1][others[order[: target + 1]]]
    shown = whole_percents(100.0 * scores[np.append(passed, best)])  # what the user reads: 72 % over 68 % leads by 4
    if shown[-1] - shown[:-1].max(initial=-np.inf) < lead:
        return ranking
    out = ranking.astype(np.float64, copy=True)
    out[best] = np.nextafter(out[order[target]], np.inf)  # just above the one standing there, so just before it
    return out


def ordered(keep: np.ndarray, first: np.ndarray, by_band: np.ndarray, alike: np.ndarray, ranking: np.ndarray,
            scores: np.ndarray, others: np.ndarray, within: int, lead: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(ranking, the rows `keep` in the list's order): pHash duplicates first (`first`), then band by band
    (`by_band`), *same design* by score (`alike`), then by the ranking, with the best-scored of `others`
    lifted (`lifted`)."""
    order = keep[np.lexsort((-ranking[keep], alike[keep], by_band[keep], first[keep]))]
    groups = np.stack([first, by_band, alike], axis=1)
    raised = lifted(ranking, scores, groups, order, within=within, others=others, lead=lead)
    if raised is ranking:
        return ranking, order
    return raised, keep[np.lexsort((-raised[keep], alike[keep], by_band[keep], first[keep]))]
