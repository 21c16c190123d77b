"""Rewards (survey §2.2): one interface, BLEU, hand-written rules, learned rewards."""
