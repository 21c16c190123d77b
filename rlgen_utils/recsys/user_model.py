"""A simulated user for sequential recommendation, vectorised over many users (torch, on the CPU).

Modelled on the interest-evolution environment of RecSim (Ie et al. 2019, "RecSim: a configurable simulation
platform for recommender systems"; and Ie et al. 2019, "SlateQ", IJCAI); used by
notebooks/4.6_recommender_and_ir.ipynb (survey §4, recommender systems and information retrieval).
Simplified and written out here:

* **Items.** A fixed catalogue of M items; item j has a topic c_j ∈ {0..K−1}, an *appeal* a_j (how attractive
  its title and thumbnail are) and a *quality* q_j (how the user feels after consuming it). Half of each topic's
  items are "good" (a ≈ 0, q > 0); the others are **clickbait** (a > 0, q < 0): more likely to be clicked and
  worse to consume.
* **User state** s = (θ, f, σ, t): interest θ ∈ [−1, 1]^K per topic, fatigue (boredom) f ≥ 0 per topic,
  satisfaction σ ∈ ℝ, and the step t of the session.
* **Choice** over a slate A of k items, with a no-click option ∅ (a conditional logit, as in SlateQ):
  v_j(s) = θ_{c_j} − f_{c_j} + a_j,  P(j | s, A) = exp(v_j) / (exp(v_∅) + Σ_{i∈A} exp(v_i)),  v_∅ fixed.
* **Transition** — it depends on the consumed item only (SlateQ's assumption), never on the rest of the slate:
  after a click on j:  θ_{c_j} ← θ_{c_j} + η (1 − θ_{c_j})  (interest drifts toward what is consumed),
  f ← ρ_f f + φ e_{c_j}  (boredom from repeated topics; it fades at rate ρ_f), σ ← ρ_σ σ + q_j;
  after no click:      f ← ρ_f f,  σ ← ρ_σ σ − κ  (an ignored slate disappoints a little).
* **Leaving.** After the transition the user ends the session with probability
  P(leave | s') = sigmoid(b_leave − w_leave σ'), which grows as satisfaction falls; every session ends at
  `horizon` steps at the latest.
* **Reward**: 1 per click. A session's return is its number of clicks.

Clickbait raises the click probability now and lowers σ, which raises the chance of leaving, so a policy that
maximises the next click (myopic) shortens the session.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Catalogue:
    """M items: topic (M,) long, appeal (M,), quality (M,), clickbait (M,) bool."""
    topic: torch.Tensor
    appeal: torch.Tensor
    quality: torch.Tensor
    clickbait: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.topic.numel())


def make_catalogue(n_topics: int = 5, good_per_topic: int = 2, clickbait_per_topic: int = 2,
                   appeal_clickbait: float = 1.0, quality_good: float = 0.5, quality_clickbait: float = -0.6,
                   jitter: float = 0.1, generator: torch.Generator | None = None) -> Catalogue:
    """Items grouped by topic: good ones (appeal 0, quality `quality_good`) then clickbait ones (appeal
    `appeal_clickbait`, quality `quality_clickbait`), each value moved by U(−jitter, jitter)."""
    per = good_per_topic + clickbait_per_topic
    topic = torch.arange(n_topics).repeat_interleave(per)
    clickbait = (torch.arange(per) >= good_per_topic).repeat(n_topics)
    appeal = torch.where(clickbait, appeal_clickbait, 0.0)
    quality = torch.where(clickbait, quality_clickbait, quality_good)
    noise = (2 * torch.rand(2, topic.numel(), generator=generator) - 1) * jitter
    return Catalogue(topic, appeal + noise[0], quality + noise[1], clickbait)


@dataclass(frozen=True)
class UserState:
    """The state of B users: interest (B, K), fatigue (B, K), satisfaction (B,), step t (B,) long, active (B,) bool."""
    interest: torch.Tensor
    fatigue: torch.Tensor
    satisfaction: torch.Tensor
    t: torch.Tensor
    active: torch.Tensor


@dataclass(frozen=True)
class UserModel:
    """The simulated user's parameters (module docstring) and its choice, transition and leaving rules."""
    catalogue: Catalogue
    no_click_score: float = 1.0     # v_∅
    drift: float = 0.1              # η: interest moves toward a consumed topic
    fatigue_gain: float = 0.4       # φ
    fatigue_decay: float = 0.7      # ρ_f
    satisfaction_decay: float = 0.8  # ρ_σ
    no_click_penalty: float = 0.1   # κ
    leave_bias: float = -3.0        # b_leave: P(leave) = sigmoid(b_leave − w_leave σ)
    leave_weight: float = 1.0       # w_leave
    horizon: int = 40

    @property
    def n_topics(self) -> int:
        return int(self.catalogue.topic.max()) + 1

    def reset(self, n_users: int, generator: torch.Generator | None = None) -> UserState:
        """New sessions: θ ~ U(−1, 1)^K, no fatigue, σ = 0, t = 0."""
        interest = 2 * torch.rand(n_users, self.n_topics, generator=generator) - 1
        return UserState(interest, torch.zeros(n_users, self.n_topics), torch.zeros(n_users),
                         torch.zeros(n_users, dtype=torch.long), torch.ones(n_users, dtype=torch.bool))

    def restart(self, state: UserState, done: torch.Tensor, generator: torch.Generator | None = None) -> UserState:
        """Replace the users whose session is `done` (B,) by new users (a fresh `reset` row each); keep the rest."""
        fresh = self.reset(len(done), generator)
        pick = lambda new, old: torch.where(done.view(-1, *[1] * (old.dim() - 1)), new, old)
        return UserState(*(pick(getattr(fresh, f), getattr(state, f))
                           for f in ("interest", "fatigue", "satisfaction", "t", "active")))

    def scores(self, state: UserState) -> torch.Tensor:
        """v_j(s) = θ_{c_j} − f_{c_j} + a_j for every item: (B, M)."""
        membership = torch.nn.functional.one_hot(self.catalogue.topic, self.n_topics).T.to(state.interest.dtype)  # K × M
        return (state.interest - state.fatigue) @ membership + self.catalogue.appeal

    def choice_probabilities(self, state: UserState, slate: torch.Tensor) -> torch.Tensor:
        """Conditional logit over a slate (B, k) of item indices: (B, k + 1), the last column is no click."""
        return choice_probabilities(self.scores(state).gather(1, slate), self.no_click_score)

    def leave_probability(self, satisfaction: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.leave_bias - self.leave_weight * satisfaction)

    def transition(self, state: UserState, clicked: torch.Tensor) -> UserState:
        """The deterministic part of a step: the state after consuming item `clicked` (B,) (−1: no click).
        Inactive users do not change. Leaving is drawn separately (`step`)."""
        click = (clicked >= 0) & state.active
        item = clicked.clamp_min(0)
        onehot = torch.nn.functional.one_hot(self.catalogue.topic[item], self.n_topics).to(state.interest.dtype)
        onehot = onehot * click[:, None]
        interest = state.interest + self.drift * onehot * (1 - state.interest)
        fatigue = self.fatigue_decay * state.fatigue + self.fatigue_gain * onehot
        satisfaction = self.satisfaction_decay * state.satisfaction + torch.where(
            click, self.catalogue.quality[item], torch.full_like(state.satisfaction, -self.no_click_penalty))
        keep = ~state.active
        return UserState(torch.where(keep[:, None], state.interest, interest),
                         torch.where(keep[:, None], state.fatigue, fatigue),
                         torch.where(keep, state.satisfaction, satisfaction),
                         state.t + state.active.long(), state.active)

    def step(self, state: UserState, slate: torch.Tensor, generator: torch.Generator | None = None):
        """Show each user a slate (B, k); returns (next state, clicked item (B,) or −1, reward (B,), done (B,)).

        The user picks from the slate by the conditional logit, the state moves by `transition`, then the user
        leaves with P(leave | s') or reaches the horizon. Users already inactive get reward 0 and stay done."""
        probs = self.choice_probabilities(state, slate)
        u = torch.rand(len(slate), 1, generator=generator)
        k = slate.shape[1]
        position = (probs.cumsum(1) < u).sum(1).clamp_max(k)     # the chosen column; k means no click
        clicked = slate.gather(1, position.clamp_max(k - 1)[:, None])[:, 0]
        clicked = torch.where((position < k) & state.active, clicked, torch.full_like(clicked, -1))
        reward = ((clicked >= 0) & state.active).float()
        nxt = self.transition(state, clicked)
        leaves = torch.rand(len(slate), generator=generator) < self.leave_probability(nxt.satisfaction)
        done = state.active & (leaves | (nxt.t >= self.horizon))
        nxt = replace(nxt, active=state.active & ~done)
        return nxt, clicked, reward, done | ~state.active

    def features(self, state: UserState) -> torch.Tensor:
        """What a learned recommender sees: (θ, f, σ, t / horizon), (B, 2K + 2)."""
        return torch.cat([state.interest, state.fatigue, state.satisfaction[:, None],
                          state.t[:, None].float() / self.horizon], 1)


def choice_probabilities(slate_scores: torch.Tensor, no_click_score: float) -> torch.Tensor:
    """Conditional logit: P(i | A) = exp(v_i) / (exp(v_∅) + Σ_{j∈A} exp(v_j)) for the slate's scores (..., k);
    returns (..., k + 1) with the no-click probability last."""
    v0 = torch.full_like(slate_scores[..., :1], no_click_score)
    return torch.softmax(torch.cat([slate_scores, v0], -1), -1)
