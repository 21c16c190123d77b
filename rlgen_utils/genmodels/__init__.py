"""The generative models of survey §1.1 (notebooks 1.1a–1.1e) and the digit classifier later notebooks reuse as a judge."""
