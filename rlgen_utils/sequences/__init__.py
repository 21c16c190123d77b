"""Token sequences as RL policies (survey §2): the autoregressive policy, seq2seq with SCST, SeqGAN, the RLHF step,
and where a sequence ends."""
