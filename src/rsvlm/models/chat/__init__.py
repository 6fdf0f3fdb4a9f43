"""Conversational (LLaVA-style) models: one protocol, several back-ends, pluggable alignment layers.

- ``protocol``: ``ChatRequest``, ``GenerationConfig``, the ``ChatModel`` protocol tasks use;
- ``registry``: named models (data) and ``load_chat``, the one way to load a folder or a name;
- ``hf``: the transformers back-end (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL folders);
- ``llava_repo``: converts original LLaVA-repository checkpoints (GeoChat, SkySenseGPT) once, cached;
- ``alignment``: vision → LLM alignment layers (linear, 2-layer MLP, Q-Former-style resampler);
- helpers, one concept each: ``formats`` (layout detection), ``templates`` (conversation formats),
  ``images`` (RasterImage → RGB), ``batching`` (which requests share a pass), ``shards`` (safe checkpoint
  reading), ``clip_tower`` (CLIP towers and position-embedding interpolation), ``cache`` (converted folders).
"""
