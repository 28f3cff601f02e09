"""The ratio-sweep protocol: subject split, balanced holdout, and domains at exact tumor fractions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import DomainConfig, SplitConfig
from benchbias.foundation.errors import BenchbiasError


class ProtocolError(BenchbiasError, ValueError):
    """The data cannot supply what the protocol asks for; the message names the field and counts."""


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # slice indices of training subjects, in the order domains are drawn from (pool_order)
    holdout: np.ndarray  # balanced holdout slice indices (from holdout subjects only)
    train_subjects: tuple[str, ...]
    holdout_subjects: tuple[str, ...]


def sample_with_fraction(pool: np.ndarray, is_tumor: np.ndarray, size: int, fraction: float, rng: np.random.Generator, field: str) -> np.ndarray:
    """``size`` indices from ``pool`` of which exactly ``round(size * fraction)`` are tumor slices."""
    n_tumor = int(round(size * fraction))
    tumor, healthy = pool[is_tumor[pool]], pool[~is_tumor[pool]]
    if n_tumor > len(tumor) or size - n_tumor > len(healthy):
        raise ProtocolError(
            f"{field}: asks for {n_tumor} tumor + {size - n_tumor} healthy slices, but only {len(tumor)} tumor + {len(healthy)} healthy are available"
        )
    chosen = np.concatenate([rng.choice(tumor, n_tumor, replace=False), rng.choice(healthy, size - n_tumor, replace=False)])
    return rng.permutation(chosen)


def redraw_unique(pool: np.ndarray, is_tumor: np.ndarray, size: int, fraction: float, seed: int, field: str) -> np.ndarray:
    """``domains.sampling: with_replacement``, as the paper's code drew a domain: numpy's legacy generator
    reseeded with ``seed``, ``round(size * fraction)`` tumor slices drawn by position in ``pool`` (its
    order matters), then ``round(size * (1 - fraction))`` healthy ones, both with replacement; each slice
    drawn is kept once (the code wrote one file per slice, so a repeat overwrote it). Sorted."""
    n_tumor, n_healthy = int(round(size * fraction)), int(round(size * (1 - fraction)))
    tumor, healthy = pool[is_tumor[pool]], pool[~is_tumor[pool]]
    if (n_tumor and not len(tumor)) or (n_healthy and not len(healthy)):
        raise ProtocolError(
            f"{field}: asks for {n_tumor} tumor + {n_healthy} healthy draws, but the pool has {len(tumor)} tumor + {len(healthy)} healthy slices"
        )
    legacy = np.random.RandomState(seed)
    drawn = [legacy.choice(group, n) for group, n in ((tumor, n_tumor), (healthy, n_healthy)) if n]
    return np.unique(np.concatenate(drawn))


def pool_order(slices: SliceSet, split: SplitConfig) -> np.ndarray:
    """Every slice index, in the order domains are drawn from: ``split.subject_order`` then slice index,
    or the data set's order when it is empty."""
    if not split.subject_order:
        return np.arange(len(slices))
    rank = {subject: i for i, subject in enumerate(split.subject_order)}
    missing = sorted(set(slices.case_id.tolist()) - set(rank))
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ProtocolError(f"split.subject_order: {len(missing)} subject(s) of the data not listed: {shown}")
    ranks = np.array([rank[c] for c in slices.case_id.tolist()])
    return np.lexsort((slices.slice_index, ranks))


def held_out_subjects(subjects: np.ndarray, split: SplitConfig, rng: np.random.Generator) -> np.ndarray:
    """The held-out subject ids (sorted): the ids listed in ``holdout_subjects``, else that many
    seeded at random, or the last ones of the sorted ids for ``method: ordered``."""
    subjects = np.unique(subjects)
    if isinstance(split.holdout_subjects, tuple):
        missing = sorted(set(split.holdout_subjects) - set(subjects.tolist()))
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise ProtocolError(f"split.holdout_subjects: {len(missing)} listed subject(s) not in the data: {shown} (ids look like {subjects[0]})")
        if len(split.holdout_subjects) >= len(subjects):
            raise ProtocolError(f"split.holdout_subjects: lists all {len(subjects)} subjects; none would be left to train on")
        return np.sort(np.array(split.holdout_subjects, dtype=subjects.dtype))
    if split.holdout_subjects >= len(subjects):
        raise ProtocolError(f"split.holdout_subjects: {split.holdout_subjects} but the data has only {len(subjects)} subjects")
    if split.method == "ordered":
        return subjects[len(subjects) - split.holdout_subjects :]
    return np.sort(rng.choice(subjects, split.holdout_subjects, replace=False))


def hold_out(case_id: np.ndarray, split: SplitConfig) -> tuple[np.ndarray, np.random.Generator]:
    """The held-out subjects of slices with these case ids, and the generator the holdout set is then
    drawn with (the subjects are drawn from it first)."""
    rng = np.random.default_rng([split.seed, 0])
    return held_out_subjects(np.unique(case_id), split, rng), rng


def split_subjects(slices: SliceSet, split: SplitConfig, domains: DomainConfig) -> Split:
    """Hold out whole subjects, then draw the holdout set (``holdout_tumor_fraction`` tumor) from their slices."""
    held, rng = hold_out(slices.case_id, split)
    in_holdout = np.isin(slices.case_id, held)
    order = pool_order(slices, split)
    if domains.sampling == "with_replacement":
        holdout = redraw_unique(
            order[in_holdout[order]], slices.is_tumor, domains.holdout_size, domains.holdout_tumor_fraction, split.seed, "domains.holdout_size"
        )
    else:
        holdout = sample_with_fraction(
            np.flatnonzero(in_holdout), slices.is_tumor, domains.holdout_size, domains.holdout_tumor_fraction, rng, "domains.holdout_size"
        )
    return Split(
        train=order[~in_holdout[order]],
        holdout=np.sort(holdout),
        train_subjects=tuple(sorted(set(np.unique(slices.case_id)) - set(held))),
        holdout_subjects=tuple(held),
    )


@dataclass(frozen=True)
class Domains:
    source: np.ndarray
    target: np.ndarray


def unpaired_domains(train: np.ndarray, is_tumor: np.ndarray, domains: DomainConfig, ratio: float, seed: int) -> Domains:
    """Source fixed per seed at ``source_tumor_fraction``; target drawn at ``ratio`` from the other slices
    (or from all of them with ``target_overlaps_source``)."""
    if domains.sampling == "with_replacement":  # the same draw at 0.5 and at the source's fraction: the paper's A and B
        source = redraw_unique(train, is_tumor, domains.source_size, domains.source_tumor_fraction, seed, "domains.source_size")
        return Domains(source=source, target=redraw_unique(train, is_tumor, domains.target_size, ratio, seed, "domains.target_size"))
    source = sample_with_fraction(train, is_tumor, domains.source_size, domains.source_tumor_fraction, np.random.default_rng([seed, 1]), "domains.source_size")
    rest = train if domains.target_overlaps_source else np.setdiff1d(train, source)
    target_rng = np.random.default_rng([seed, 2, int(round(ratio * 1000))])
    target = sample_with_fraction(rest, is_tumor, domains.target_size, ratio, target_rng, "domains.target_size")
    return Domains(source=source, target=target)


def paired_domains(train: np.ndarray, is_tumor: np.ndarray, domains: DomainConfig, ratio: float, seed: int) -> Domains:
    """Pairs (the same slices in both modalities) whose tumor fraction is ``ratio``: the unpaired target
    domain's slices with ``paired_from_target`` (in the data set's order, as the paper's loader read its
    sorted files), else drawn on their own."""
    if domains.paired_from_target:
        pairs = np.sort(unpaired_domains(train, is_tumor, domains, ratio, seed).target)
        return Domains(source=pairs, target=pairs)
    if domains.sampling == "with_replacement":
        pairs = redraw_unique(train, is_tumor, domains.target_size, ratio, seed, "domains.target_size")
        return Domains(source=pairs, target=pairs)
    rng = np.random.default_rng([seed, 3, int(round(ratio * 1000))])
    pairs = sample_with_fraction(train, is_tumor, domains.target_size, ratio, rng, "domains.target_size")
    return Domains(source=pairs, target=pairs)


def judge_population(split: Split, is_tumor: np.ndarray, domains: DomainConfig, population: str, seed: int) -> np.ndarray:
    """The slices whose real target the judge trains on (``classifier.population``), sorted:
    ``train_targets``, every slice of the training subjects; ``fraction_extremes``, the target domains
    drawn at fractions 0 and 1 for translator seed ``seed`` (all healthy plus all tumor slices: the real
    targets of the sweep's two extreme cells, as the paper's notebook trained its classifier)."""
    if population == "train_targets":
        return split.train
    if population != "fraction_extremes":
        raise ValueError(f"unknown classifier population {population!r}")
    try:
        targets = [unpaired_domains(split.train, is_tumor, domains, ratio, seed).target for ratio in (0.0, 1.0)]
    except ProtocolError as exc:
        raise ProtocolError(f"classifier.population: fraction_extremes: {exc}") from None
    return np.sort(np.concatenate(targets))


def source_need(domains: DomainConfig, unpaired: bool) -> tuple[int, int]:
    """Tumor and healthy slices of the unpaired source domain (none when every method is paired)."""
    if not unpaired:
        return 0, 0
    tumor = int(round(domains.source_size * domains.source_tumor_fraction))
    return tumor, domains.source_size - tumor


@dataclass(frozen=True)
class FractionNeed:
    """The training slices one target fraction draws."""

    ratio: float
    source_tumor: int  # the unpaired source domain (0 when every method is paired)
    source_healthy: int
    target_tumor: int  # the unpaired target domain, or the pairs of paired methods
    target_healthy: int
    disjoint: bool  # unpaired source and target drawn from disjoint slices

    @property
    def pool(self) -> tuple[int, int]:
        """Tumor and healthy training slices the target is drawn from: the target's own, plus the
        source's when the two are disjoint."""
        if self.disjoint:
            return self.source_tumor + self.target_tumor, self.source_healthy + self.target_healthy
        return self.target_tumor, self.target_healthy

    @property
    def total(self) -> tuple[int, int]:
        """Tumor and healthy training slices this fraction needs in all: the pool, or the source
        where that is larger (domains that may overlap each need their own slices)."""
        tumor, healthy = self.pool
        return max(self.source_tumor, tumor), max(self.source_healthy, healthy)


def fraction_needs(domains: DomainConfig, unpaired: bool) -> list[FractionNeed]:
    """What every fraction of the sweep draws (``check_capacity`` and ``benchbias plan`` both read it)."""
    src_tumor, src_healthy = source_need(domains, unpaired)
    disjoint = unpaired and not domains.target_overlaps_source
    needs = []
    for ratio in domains.target_fractions:
        tgt_tumor = int(round(domains.target_size * ratio))
        needs.append(FractionNeed(ratio, src_tumor, src_healthy, tgt_tumor, domains.target_size - tgt_tumor, disjoint))
    return needs


def check_capacity(train: np.ndarray, is_tumor: np.ndarray, domains: DomainConfig, unpaired: bool) -> None:
    """Fail before any training when some fraction of the sweep cannot be drawn."""
    tumor = int(is_tumor[train].sum())
    healthy = len(train) - tumor
    if domains.sampling == "with_replacement":  # any non-empty pool can be drawn from as often as asked
        for need in fraction_needs(domains, unpaired):
            for kind, asked, have in (("tumor", need.target_tumor, tumor), ("healthy", need.target_healthy, healthy)):
                if asked and not have:
                    raise ProtocolError(
                        f"domains.target_size: at target fraction {need.ratio} the protocol draws {kind} slices, but the training subjects have none"
                    )
        return
    src_tumor, src_healthy = source_need(domains, unpaired)
    if unpaired and (src_tumor > tumor or src_healthy > healthy):
        raise ProtocolError(
            f"domains.source_size: the source domain needs {src_tumor} tumor + {src_healthy} healthy training slices, "
            f"but the training subjects have {tumor} tumor + {healthy} healthy"
        )
    for need in fraction_needs(domains, unpaired):
        need_tumor, need_healthy = need.pool  # the source fits (checked above)
        if need_tumor > tumor or need_healthy > healthy:
            raise ProtocolError(
                f"domains.target_size: at target fraction {need.ratio} the protocol needs "
                f"{need_tumor} tumor + {need_healthy} healthy training slices "
                f"({'source + target, disjoint' if need.disjoint else 'target' if unpaired else 'pairs'}), "
                f"but the training subjects have {tumor} tumor + {healthy} healthy"
            )
