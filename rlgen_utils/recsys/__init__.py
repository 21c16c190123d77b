"""Recommendation as a sequential decision problem (the survey's §4 applications to recommender systems and IR):
a documented simulated user (`user_model`) and slate choice maths (`slates`) for notebooks/4.6_recommender_and_ir.ipynb."""
