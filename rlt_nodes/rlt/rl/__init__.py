"""Online RL of RLT (stage 2): a reference-conditioned actor and a twin-Q critic trained off-policy with TD3.

Modules: `config` (RLConfig), `units` (physical ↔ normalized), `networks` (Actor, TwinCritic), `td3` (losses and
the update), `replay` (ReplayBuffer), `assembly` (control steps -> chunk transitions), `learner` (training loop,
checkpoints), `policy` (acting in the actor node), `bench` (update-throughput benchmark).
Everything here is pure PyTorch/numpy; it never imports rclpy, a message package or `rlt_nodes`.
"""
