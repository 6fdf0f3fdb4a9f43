"""Chat-model tasks (captioning, VQA, grounding, counting, chat classification) with versioned protocols.

``registry.TASKS`` maps CLI names to task factories; each task follows ``base.ChatTask``. Protocols
(prompts per model family, normalisation, matching rules, bins) are YAML data in ``protocols_data/``,
loaded strictly by ``protocols.load_protocol``; the metrics live beside each task (``vqa``,
``captioning``, ``grounding`` with ``geometry`` and ``box_parsing``, ``counting``, ``classify``).
"""
