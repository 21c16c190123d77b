"""Tic-tac-toe rules, minimax, MCTS/PUCT and the policy-value evaluator against brute force and torch."""
import numpy as np
import pytest
import torch

from rlgen_utils.rl.alphazero import (SYMMETRIES, PolicyValueNet, encode_boards, network_evaluator, policy_player,
    search_player)
from rlgen_utils.rl.mcts import puct_search, uct_search
from rlgen_utils.rl.tictactoe import (EMPTY, TicTacToe, exact_results, forced_win_puzzles, legal_moves, losing_moves,
    minimax_moves, minimax_player, minimax_value, play, play_games, player_strategy, random_player, terminal_value,
    to_move, winner)


def all_positions():
    seen, frontier = {EMPTY}, [EMPTY]
    while frontier:
        nxt = []
        for b in frontier:
            for m in legal_moves(b):
                c = play(b, m)
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        frontier = nxt
    return seen


def test_the_game_tree_has_the_known_size_and_value():
    assert len(all_positions()) == 5478   # the number of legal tic-tac-toe positions
    assert minimax_value(EMPTY) == 0        # perfect play draws


def worst_result_for(player, board):
    """Brute force: the worst outcome `player` can get when it plays ANY of minimax's optimal moves and the
    opponent tries every legal move sequence. 1 win, 0 draw, -1 loss (for `player`)."""
    result = terminal_value(board)
    if result is not None:
        return winner(board) * player
    if to_move(board) == player:
        return min(worst_result_for(player, play(board, m)) for m in minimax_moves(board))
    return min(worst_result_for(player, play(board, m)) for m in legal_moves(board))


def test_minimax_never_loses_against_exhaustive_play_with_either_colour():
    assert worst_result_for(1, EMPTY) == 0
    assert worst_result_for(-1, EMPTY) == 0
    # and it wins whenever the opponent gives it the chance: after X plays an edge and O a far corner ...
    assert minimax_value(play(play(EMPTY, 1), 6)) == 1  # ... X has a forced win


def forced_win_positions(limit=6):  # brute force over the sorted positions (reference for forced_win_puzzles)
    """Positions where the player to move wins by force, cannot win at once, and has exactly one winning move."""
    found = []
    for b in sorted(all_positions()):
        moves = legal_moves(b)
        if not moves or minimax_value(b) != 1 or any(winner(play(b, m)) for m in moves):
            continue
        winning = [m for m in moves if minimax_value(play(b, m)) == -1]
        if len(winning) == 1:
            found.append((b, winning[0]))
    return found if limit >= len(found) else found[:: max(1, len(found) // limit)][:limit]


def uniform_evaluator(boards):
    legal = np.array([[float(b[i] == 0) for i in range(9)] for b in boards])
    return legal / legal.sum(axis=1, keepdims=True), np.zeros(len(boards))


def test_forced_win_puzzles_match_brute_force():
    assert forced_win_puzzles() == forced_win_positions(limit=10_000)


def test_mcts_finds_the_forced_win():
    positions = forced_win_positions()
    assert len(positions) == 6
    for board, move in positions:
        counts = uct_search(board, 3000, c=1.4, rng=np.random.default_rng(0))
        assert counts.argmax() == move, (board, counts)
        counts = puct_search([board], uniform_evaluator, 800)  # PUCT with no knowledge: search alone finds it
        assert counts[0].argmax() == move


def test_batched_puct_search_equals_one_search_per_board():
    net = PolicyValueNet()
    evaluate = network_evaluator(net)
    boards = [EMPTY, play(EMPTY, 4), play(play(EMPTY, 0), 4)]
    together = puct_search(boards, evaluate, 50)
    for i, b in enumerate(boards):
        np.testing.assert_array_equal(together[i], puct_search([b], evaluate, 50)[0])
    assert together.sum(axis=1).tolist() == [50, 50, 50]  # every simulation ends in one visit per tree


def test_numpy_evaluator_matches_the_torch_network():
    torch.manual_seed(0)
    net = PolicyValueNet(hidden=16)
    boards = [EMPTY, play(EMPTY, 4), play(play(play(EMPTY, 4), 0), 8)]
    priors, values = network_evaluator(net)(boards)
    logits, v = net(encode_boards(boards))
    legal = torch.tensor([[b[i] == 0 for i in range(9)] for b in boards])
    expected = torch.softmax(logits.masked_fill(~legal, -torch.inf), 1)
    np.testing.assert_allclose(priors, expected.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(values, v.detach().numpy(), atol=1e-5)


def test_puct_with_c_zero_ignores_the_priors():
    """c_puct scales the whole prior term, so with c_puct = 0 the priors cannot change the search: two
    evaluators with the same values and opposite priors give the same visit counts (and different ones for c > 0)."""
    def evaluator(prefer_first):
        def evaluate(boards):
            priors = np.array([[(9 - m if prefer_first else m + 1) * (b[m] == 0) for m in range(9)] for b in boards], float)
            values = np.array([0.1 * (sum(abs(x) for x in b) % 3) - 0.1 for b in boards])
            return priors / priors.sum(axis=1, keepdims=True), values
        return evaluate
    boards = [EMPTY, play(EMPTY, 4)]
    np.testing.assert_array_equal(puct_search(boards, evaluator(True), 60, c_puct=0.0),
                                  puct_search(boards, evaluator(False), 60, c_puct=0.0))
    assert not np.array_equal(puct_search(boards, evaluator(True), 60, c_puct=1.5),
                              puct_search(boards, evaluator(False), 60, c_puct=1.5))


def test_policy_player_plays_the_legal_move_with_the_highest_prior():
    torch.manual_seed(0)
    net = PolicyValueNet(hidden=16)
    with torch.no_grad():
        net.policy_head.bias[4] = 100.0   # the centre dominates every prior while it is free
    evaluate = network_evaluator(net)
    boards = [EMPTY, play(EMPTY, 4), play(play(EMPTY, 4), 0)]
    moves = policy_player(evaluate)(boards)
    assert moves[0] == 4 and all(b[m] == 0 for b, m in zip(boards, moves))
    assert moves[1:] == [int(np.argmax(p)) for p in evaluate(boards[1:])[0]]
    # both kinds of player finish complete games against each other
    assert len(play_games(policy_player(evaluate), search_player(evaluate, 8, 1.5), 3)) == 3


def test_symmetries_preserve_the_value():
    for board in list(all_positions())[:300]:
        for perm in SYMMETRIES:
            assert minimax_value(tuple(np.array(board)[perm].tolist())) == minimax_value(board)


def test_gymnasium_style_environment_and_clear_errors():
    env = TicTacToe()
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0] * 9 and len(info["legal_moves"]) == 9
    for m in (0, 3, 1, 4):
        obs, reward, terminated, truncated, _ = env.step(m)
        assert reward == 0 and not terminated
    assert obs.tolist() == [1, 1, 0, -1, -1, 0, 0, 0, 0]  # seen by X, who moves next
    obs, reward, terminated, truncated, _ = env.step(2)
    assert reward == 1.0 and terminated and not truncated
    with pytest.raises(ValueError, match="legal_moves"):
        play(play(EMPTY, 0), 0)
    with pytest.raises(ValueError, match="legal moves"):
        uct_search(env.board, 10)


def test_random_players_play_complete_games():
    rng = np.random.default_rng(0)
    results = play_games(random_player(rng), random_player(rng), 200)
    assert set(results.tolist()) <= {-1, 0, 1} and (results == 1).mean() > (results == -1).mean()  # X's edge


def first_legal(boards):
    """A deterministic weak player: the lowest-numbered empty cell."""
    return [legal_moves(b)[0] for b in boards]


def test_player_strategy_covers_every_position_the_player_can_meet():
    strategy = player_strategy(first_legal)
    # brute force: walk the tree with every opponent move, the player's own move from the rule, both colours
    expected = set()
    for me in (1, -1):
        stack = [EMPTY]
        while stack:
            b = stack.pop()
            if terminal_value(b) is not None:
                continue
            if to_move(b) == me:
                expected.add(b)
                stack.append(play(b, legal_moves(b)[0]))
            else:
                stack += [play(b, m) for m in legal_moves(b)]
    assert set(strategy) == expected
    assert all(strategy[b] == legal_moves(b)[0] for b in strategy)


def test_exact_results_match_many_played_games():
    """Exact expectations against Monte-Carlo games with the same opponents (4 standard errors)."""
    strategy = player_strategy(first_legal)
    rng = np.random.default_rng(0)
    n = 4000
    for opponent, make in (("random", random_player), ("minimax", minimax_player)):
        exact = exact_results(strategy, opponent)
        assert abs(sum(exact) - 1) < 1e-12
        results = np.concatenate([play_games(first_legal, make(rng), n), -play_games(make(rng), first_legal, n)])
        for k, outcome in enumerate((1, 0, -1)):
            p = (results == outcome).mean()
            assert abs(p - exact[k]) <= 4 * np.sqrt(max(exact[k] * (1 - exact[k]), 1e-4) / len(results)), (opponent, k)
    with pytest.raises(ValueError):
        exact_results(strategy, "perfect")


def test_a_perfect_player_has_no_losing_moves_and_never_loses():
    perfect = player_strategy(lambda boards: [minimax_moves(b)[0] for b in boards])
    assert losing_moves(perfect) == []
    assert exact_results(perfect, "minimax") == (0.0, 1.0, 0.0)
    assert exact_results(perfect, "random")[2] == 0.0
    weak = player_strategy(first_legal)
    mistakes = losing_moves(weak)
    assert mistakes and all(minimax_value(b) >= 0 and minimax_value(play(b, m)) == 1 for b, m in mistakes)
    assert exact_results(weak, "minimax")[2] == 1.0  # minimax punishes it in every game
