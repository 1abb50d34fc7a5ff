"""The frozen VLA side of RLT: base policy, RL token, ONNX export and serving.

Modules (import them directly; this package imports nothing, so `rlt.models.onnx_vla` stays torch-free):

    config      VlaConfig, VlaTrainConfig, TokenConfig, ImageFeaturesConfig
    vla         the vision-language-action transformer, its tokenizer and checkpoints
    data        demonstrations -> training frames, episode split, image-shift augmentation
    bc          train_vla: behaviour cloning on demonstrations
    evaluate    evaluate_vla: closed-loop success in the simulator (and the expert on the same seeds)
    rl_token    RlToken encoder-decoder, train_token, diagnose_token
    probes      ridge probes of the privileged tip offset, shared by both encoders' diagnostics
    embed       bring your own VLA: rlt.embed/1 policies, their cached embeddings, train_token_onnx
    image_features  the "no RL token" ablation: CNN image autoencoder whose features take z_rl's place
    export      export_onnx: VLA + RL-token (or image-feature) encoder as one ONNX graph; compose_onnx
    contract    the ONNX I/O contracts (CONTRACT, VlaSpec; EMBED_CONTRACT, EmbedSpec) and their checks
    onnx_vla    OnnxVla (ONNX Runtime) and FakeVla: infer(images, proprio) -> (ref_chunk, rl_token)
    bench       bench_vla: forward-pass latency, ONNX Runtime vs PyTorch
    layers, trainer, checkpoint, testing: shared building blocks and test fixtures
"""
