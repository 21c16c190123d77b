"""Learning from pairwise preferences (survey §2.2, notebook 2.2d): the Bradley–Terry loss of a reward model
and DPO's loss (Rafailov et al. 2023), which is Bradley–Terry on the policy's implied reward."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """-log σ(r(y_w) - r(y_l)): the negative log-likelihood of the preferences under Bradley–Terry."""
    return -F.logsigmoid(reward_chosen - reward_rejected).mean()


def dpo_loss(logp_chosen: torch.Tensor, logp_rejected: torch.Tensor, ref_logp_chosen: torch.Tensor,
             ref_logp_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Direct preference optimisation (Rafailov et al. 2023).

    The implied reward is r̂(y) = β (log π(y) - log π_ref(y)); the loss is Bradley–Terry on r̂:
    -log σ(r̂(y_w) - r̂(y_l)). Returns (loss, r̂_chosen, r̂_rejected); log-probs are per sequence.
    """
    reward_chosen = beta * (logp_chosen - ref_logp_chosen)
    reward_rejected = beta * (logp_rejected - ref_logp_rejected)
    return bradley_terry_loss(reward_chosen, reward_rejected), reward_chosen.detach(), reward_rejected.detach()
