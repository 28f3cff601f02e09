"""The ratio sampler, the subject split and the domains of the sweep."""

import numpy as np
import pytest

from benchbias.data.protocol import (
    ProtocolError,
    check_capacity,
    paired_domains,
    sample_with_fraction,
    split_subjects,
    unpaired_domains,
)
from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import DomainConfig, SplitConfig


def fake_slices(subjects=10, per_subject=20, tumor_per_subject=8):
    n = subjects * per_subject
    is_tumor = np.tile(np.arange(per_subject) < tumor_per_subject, subjects)
    zeros = np.zeros((n, 4, 4), np.float32)
    return SliceSet(
        source=zeros,
        target=zeros,
        tumor_mask=zeros.astype(bool),
        brain_fraction=np.ones(n, np.float32),
        tumor_fraction=is_tumor.astype(np.float32),
        is_tumor=is_tumor,
        case_id=np.repeat([f"S{i:02d}" for i in range(subjects)], per_subject),
        slice_index=np.tile(np.arange(per_subject), subjects),
    )


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_sampler_gives_exact_fractions(fraction):
    is_tumor = np.arange(200) % 2 == 0
    chosen = sample_with_fraction(np.arange(200), is_tumor, 80, fraction, np.random.default_rng(0), "f")
    assert len(chosen) == len(set(chosen)) == 80
    assert is_tumor[chosen].sum() == round(80 * fraction)


def test_sampler_refuses_more_tumor_than_exists():
    is_tumor = np.arange(100) < 10
    with pytest.raises(ProtocolError) as err:
        sample_with_fraction(np.arange(100), is_tumor, 40, 0.5, np.random.default_rng(0), "domains.target_size")
    assert str(err.value) == "domains.target_size: asks for 20 tumor + 20 healthy slices, but only 10 tumor + 90 healthy are available"


def test_split_is_by_subject_and_holdout_balanced():
    slices = fake_slices()
    split = split_subjects(slices, SplitConfig(holdout_subjects=3, seed=1), DomainConfig(holdout_size=20))
    train_ids, holdout_ids = set(slices.case_id[split.train]), set(slices.case_id[split.holdout])
    assert not train_ids & holdout_ids
    assert holdout_ids <= set(split.holdout_subjects) and len(split.holdout_subjects) == 3
    assert slices.is_tumor[split.holdout].sum() == 10 and len(split.holdout) == 20
    again = split_subjects(slices, SplitConfig(holdout_subjects=3, seed=1), DomainConfig(holdout_size=20))
    np.testing.assert_array_equal(split.holdout, again.holdout)


def test_split_needs_enough_subjects():
    with pytest.raises(ProtocolError, match="split.holdout_subjects: 10 but the data has only 10 subjects"):
        split_subjects(fake_slices(), SplitConfig(holdout_subjects=10), DomainConfig(holdout_size=4))


def test_unpaired_source_is_fixed_and_disjoint_from_target():
    slices = fake_slices()
    train = np.arange(len(slices))
    domains = DomainConfig(source_size=40, target_size=40)
    sources = []
    for ratio in (0.0, 0.3, 1.0):
        d = unpaired_domains(train, slices.is_tumor, domains, ratio, seed=0)
        assert slices.is_tumor[d.source].sum() == 20 and slices.is_tumor[d.target].sum() == round(40 * ratio)
        assert not set(d.source) & set(d.target)
        sources.append(d.source)
    assert all(np.array_equal(sources[0], s) for s in sources)


def test_paired_domains_are_the_same_slices():
    slices = fake_slices()
    d = paired_domains(np.arange(len(slices)), slices.is_tumor, DomainConfig(target_size=30), 0.7, seed=0)
    np.testing.assert_array_equal(d.source, d.target)
    assert slices.is_tumor[d.target].sum() == 21


def test_capacity_is_checked_before_training():
    slices = fake_slices()  # 80 tumor, 120 healthy slices
    train = np.arange(len(slices))
    check_capacity(train, slices.is_tumor, DomainConfig(source_size=40, target_size=60), unpaired=True)
    with pytest.raises(ProtocolError, match="at target fraction 1.0 the protocol needs 81 tumor"):
        check_capacity(train, slices.is_tumor, DomainConfig(source_size=40, target_size=60 + 1, target_fractions=(1.0,)), unpaired=True)
    check_capacity(train, slices.is_tumor, DomainConfig(source_size=40, target_size=80, target_fractions=(1.0,)), unpaired=False)


def test_listed_holdout_subjects_are_held_out_and_unknown_ids_are_named():
    slices = fake_slices()
    split = split_subjects(slices, SplitConfig(holdout_subjects=("S07", "S02")), DomainConfig(holdout_size=20))
    assert split.holdout_subjects == ("S02", "S07") and set(slices.case_id[split.holdout]) <= {"S02", "S07"}
    assert not {"S02", "S07"} & set(slices.case_id[split.train])
    with pytest.raises(ProtocolError) as err:
        split_subjects(slices, SplitConfig(holdout_subjects=("S02", "HG0001")), DomainConfig(holdout_size=20))
    assert str(err.value) == "split.holdout_subjects: 1 listed subject(s) not in the data: HG0001 (ids look like S00)"


def test_overlapping_target_reuses_source_slices_where_disjoint_domains_cannot_be_drawn():
    """The paper's notebook drew domain B from all training slices: at r=0 its 700-slice target took
    nearly all of the 704 healthy training slices, which a disjoint draw cannot supply."""
    slices = fake_slices()  # 80 tumor, 120 healthy slices
    train = np.arange(len(slices))
    disjoint = DomainConfig(source_size=100, target_size=100, target_fractions=(0.0,))
    with pytest.raises(ProtocolError, match=r"needs 50 tumor \+ 150 healthy training slices \(source \+ target, disjoint\)"):
        check_capacity(train, slices.is_tumor, disjoint, unpaired=True)
    overlapping = DomainConfig(source_size=100, target_size=100, target_fractions=(0.0, 0.8), target_overlaps_source=True)
    check_capacity(train, slices.is_tumor, overlapping, unpaired=True)
    d = unpaired_domains(train, slices.is_tumor, overlapping, 0.0, seed=0)
    assert slices.is_tumor[d.target].sum() == 0 and len(set(d.target)) == 100
    assert len(set(d.source) & set(d.target)) >= 20  # 100 of 120 healthy slices: at least 20 shared with the source's 50
    with pytest.raises(ProtocolError, match=r"at target fraction 0.9 the protocol needs 90 tumor \+ 10 healthy training slices \(target\)"):
        check_capacity(
            train, slices.is_tumor, DomainConfig(source_size=100, target_size=100, target_fractions=(0.9,), target_overlaps_source=True), unpaired=True
        )


def test_capacity_check_and_plan_agree_on_every_protocol():
    """One arithmetic (protocol.fraction_needs) behind both: whatever the counts and options, the run's
    capacity check fails exactly when the plan marks some fraction infeasible."""
    from benchbias.run.plan import fraction_plans

    rng = np.random.default_rng(0)
    for _ in range(400):
        tumor, healthy = (int(n) for n in rng.integers(0, 60, 2))
        is_tumor = np.array([True] * tumor + [False] * healthy)
        domains = DomainConfig(
            source_size=int(rng.integers(1, 40)),
            target_size=int(rng.integers(1, 40)),
            source_tumor_fraction=float(rng.choice([0.0, 0.3, 0.5, 1.0])),
            target_fractions=(0.0, 0.5, 1.0),
            target_overlaps_source=bool(rng.integers(2)),
        )
        unpaired = bool(rng.integers(2))
        try:
            check_capacity(np.arange(len(is_tumor)), is_tumor, domains, unpaired)
            fits = True
        except ProtocolError:
            fits = False
        assert fits == all(p.shortfall is None for p in fraction_plans(tumor, healthy, domains, unpaired)), (tumor, healthy, domains, unpaired)
