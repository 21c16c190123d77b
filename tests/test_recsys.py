"""The simulated user and SlateQ's slate maths (rlgen_utils.recsys), against independent references: the
conditional logit's closed form and Monte-Carlo frequencies, brute force over every slate, and hand-computed
expectations of one simulator step."""
import itertools
import math

import torch

from rlgen_utils.recsys.slates import greedy_slate, myopic_slate, random_slate, slate_value
from rlgen_utils.recsys.user_model import UserModel, UserState, choice_probabilities, make_catalogue


def tiny_model(**kw):
    cat = make_catalogue(n_topics=2, good_per_topic=1, clickbait_per_topic=1, generator=torch.Generator().manual_seed(0))
    return UserModel(cat, **kw)


def one_user(model, interest, fatigue=None, satisfaction=0.0, t=0, n=1):
    k = model.n_topics
    interest = torch.tensor(interest, dtype=torch.float32).expand(n, k).clone()
    fatigue = torch.zeros(n, k) if fatigue is None else torch.tensor(fatigue, dtype=torch.float32).expand(n, k).clone()
    return UserState(interest, fatigue, torch.full((n,), float(satisfaction)), torch.full((n,), t, dtype=torch.long),
                     torch.ones(n, dtype=torch.bool))


def test_conditional_logit_matches_its_closed_form():
    v, v0 = [0.3, -1.2, 2.0], 0.7
    p = choice_probabilities(torch.tensor([v]), v0)[0]
    z = math.exp(v0) + sum(math.exp(x) for x in v)
    expected = [math.exp(x) / z for x in v] + [math.exp(v0) / z]
    assert torch.allclose(p, torch.tensor(expected), atol=1e-6)


def test_scores_follow_the_documented_formula():
    model = tiny_model()
    s = one_user(model, [0.5, -0.4], fatigue=[0.2, 0.0])
    cat = model.catalogue
    expected = torch.tensor([[0.5 - 0.2, -0.4][int(c)] for c in cat.topic]) + cat.appeal
    assert torch.allclose(model.scores(s)[0], expected, atol=1e-6)


def test_simulated_choices_match_the_logit_by_monte_carlo():
    model = tiny_model(leave_bias=-50.0)
    n = 200_000
    s = one_user(model, [0.5, -0.4], fatigue=[0.3, 0.0], satisfaction=0.5, n=n)
    slate = torch.tensor([[1, 0, 3]]).expand(n, 3)
    p = model.choice_probabilities(one_user(model, [0.5, -0.4], [0.3, 0.0], 0.5), slate[:1])[0]
    _, clicked, reward, _ = model.step(s, slate, torch.Generator().manual_seed(1))
    freq = torch.stack([(clicked == i).float().mean() for i in (1, 0, 3)] + [(clicked == -1).float().mean()])
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() < 4 * se + 1e-6).all(), (freq, p)
    assert abs(float(reward.mean()) - float(1 - p[-1])) < 4 * float(se[-1]) + 1e-6


def test_step_statistics_match_hand_computed_expectations():
    model = tiny_model()
    cat = model.catalogue
    n = 200_000
    sigma0 = 0.4
    s = one_user(model, [0.2, 0.6], satisfaction=sigma0, n=n)
    slate = torch.tensor([[0, 3]]).expand(n, 2)
    v = [0.2 + float(cat.appeal[0]), 0.6 + float(cat.appeal[3])]
    z = math.exp(model.no_click_score) + sum(math.exp(x) for x in v)
    p_click = [math.exp(x) / z for x in v]
    p_none = 1 - sum(p_click)
    sig = lambda x: 1 / (1 + math.exp(-x))
    leave = lambda sigma: sig(model.leave_bias - model.leave_weight * sigma)
    expected_leave = (p_click[0] * leave(model.satisfaction_decay * sigma0 + float(cat.quality[0]))
                      + p_click[1] * leave(model.satisfaction_decay * sigma0 + float(cat.quality[3]))
                      + p_none * leave(model.satisfaction_decay * sigma0 - model.no_click_penalty))
    nxt, clicked, reward, done = model.step(s, slate, torch.Generator().manual_seed(2))
    assert abs(float(reward.mean()) - (1 - p_none)) < 4 * math.sqrt(p_none * (1 - p_none) / n)
    assert abs(float(done.float().mean()) - expected_leave) < 4 * math.sqrt(expected_leave * (1 - expected_leave) / n)
    assert (nxt.active == ~done).all() and (nxt.t == 1).all()
    # the deterministic transition, by hand: a click on item 3 (topic 1)
    after = model.transition(one_user(model, [0.2, 0.6], fatigue=[0.5, 0.1], satisfaction=sigma0), torch.tensor([3]))
    assert torch.allclose(after.interest[0], torch.tensor([0.2, 0.6 + model.drift * 0.4]))
    assert torch.allclose(after.fatigue[0], torch.tensor([0.5 * model.fatigue_decay, 0.1 * model.fatigue_decay + model.fatigue_gain]))
    assert math.isclose(float(after.satisfaction[0]), model.satisfaction_decay * sigma0 + float(cat.quality[3]), rel_tol=1e-6)
    # no click: only decay and the small disappointment
    after = model.transition(one_user(model, [0.2, 0.6], fatigue=[0.5, 0.1], satisfaction=sigma0), torch.tensor([-1]))
    assert torch.allclose(after.interest[0], torch.tensor([0.2, 0.6]))
    assert math.isclose(float(after.satisfaction[0]), model.satisfaction_decay * sigma0 - model.no_click_penalty, rel_tol=1e-6)


def test_inactive_users_stay_done_and_restart_replaces_only_done_rows():
    model = tiny_model()
    g = torch.Generator().manual_seed(3)
    s = model.reset(6, g)
    s = UserState(s.interest, s.fatigue, s.satisfaction, s.t, torch.tensor([True, False] * 3))
    nxt, clicked, reward, done = model.step(s, random_slate(6, model.catalogue.size, 2, g), g)
    assert (reward[1::2] == 0).all() and done[1::2].all() and (clicked[1::2] == -1).all()
    assert torch.equal(nxt.interest[1::2], s.interest[1::2])
    fresh = model.restart(nxt, done, g)
    assert fresh.active.all() and (fresh.t[done] == 0).all() and torch.equal(fresh.interest[~done], nxt.interest[~done])


def test_myopic_slate_maximises_the_click_probability_over_all_slates():
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        v = torch.randn(1, 4, generator=g)
        best = max(itertools.combinations(range(4), 2), key=lambda a: 1 - float(choice_probabilities(v[:, list(a)], 0.5)[0, -1]))
        assert set(myopic_slate(v, 2)[0].tolist()) == set(best)
        # the greedy optimiser with Q̄ = 1 (a click) and Q̄_∅ = 0 is the same slate
        assert set(greedy_slate(v, torch.ones(1, 4), torch.zeros(1), 0.5, 2)[0].tolist()) == set(best)


def test_greedy_slate_is_close_to_the_brute_force_optimum():
    g = torch.Generator().manual_seed(5)
    gaps = []
    for _ in range(200):
        v, q, q0 = torch.randn(1, 6, generator=g), torch.rand(1, 6, generator=g) * 3, torch.rand(1, generator=g)
        value = lambda a, v=v, q=q, q0=q0: float(slate_value(v[:, list(a)], q[:, list(a)], q0, 0.0))
        best = max(value(a) for a in itertools.combinations(range(6), 3))
        got = value(greedy_slate(v, q, q0, 0.0, 3)[0].tolist())
        assert got <= best + 1e-6
        gaps.append(best - got)
    assert max(gaps) < 0.05 * 3 and sum(g == 0 or g < 1e-6 for g in gaps) > 150


def test_slateq_decomposition_equals_brute_force_over_all_slates():
    """Q(s, A) by brute force (expectimax over every slate and every choice, `steps` steps ahead) equals
    Σ_{i∈A∪∅} P(i|s,A) Q̄(s,i), with Q̄ from SlateQ's item-wise Bellman equation."""
    model = tiny_model(leave_bias=-1.5)
    M, k, gamma, steps = model.catalogue.size, 2, 0.9, 3
    slates = [list(a) for a in itertools.combinations(range(M), k)]

    def outcomes(state, slate):
        p = model.choice_probabilities(state, torch.tensor([slate]))[0]
        for pos, item in enumerate(slate + [-1]):
            nxt = model.transition(state, torch.tensor([item]))
            yield float(p[pos]), float(item >= 0), nxt, float(model.leave_probability(nxt.satisfaction)[0])

    def q_brute(state, slate, h):
        total = 0.0
        for p, r, nxt, leave in outcomes(state, slate):
            future = max(q_brute(nxt, a, h - 1) for a in slates) if h > 1 else 0.0
            total += p * (r + gamma * (1 - leave) * future)
        return total

    def q_bar(state, h):
        """Q̄(s, i) for every item and ∅ (the last entry): r_i + γ (1 − P(leave | s'_i)) max_A' Σ P Q̄(s'_i, ·)."""
        values = []
        for item in list(range(M)) + [-1]:
            nxt = model.transition(state, torch.tensor([item]))
            future = 0.0
            if h > 1:
                qn = q_bar(nxt, h - 1)
                vn = model.scores(nxt)
                future = max(float(slate_value(vn[:, a], qn[None, a], qn[None, -1], model.no_click_score)) for a in slates)
            values.append(float(item >= 0) + gamma * (1 - float(model.leave_probability(nxt.satisfaction)[0])) * future)
        return torch.tensor(values)

    state = one_user(model, [0.4, -0.3], fatigue=[0.2, 0.0], satisfaction=-0.5)
    qb = q_bar(state, steps)
    v = model.scores(state)
    for a in slates:
        decomposed = float(slate_value(v[:, a], qb[None, a], qb[None, -1], model.no_click_score))
        assert math.isclose(decomposed, q_brute(state, a, steps), rel_tol=1e-5)
