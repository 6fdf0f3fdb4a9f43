"""Conversational (LLaVA-style) models: one protocol, several back-ends, pluggable alignment layers.

Back-ends: ``hf`` (LLaVA-1.5/NeXT, Qwen2-VL folders), ``llava_repo`` (GeoChat/SkySenseGPT releases,
converted once), ``lite_chat`` (rsvlm's own model: the lite image tower → alignment layer → a small LLM,
Gemma-3-270M by default via ``gemma``). ``registry.load_chat`` picks the back-end from a folder's layout.
"""
