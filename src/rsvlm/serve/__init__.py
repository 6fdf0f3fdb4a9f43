"""``rsvlm serve``: the REST API and web page over the models, an index and scene jobs (``create_app``).

Modules: ``config`` (settings and limits), ``security`` (token, origin, body, file type, pixel and path checks),
``resources`` (models loaded once, behind a lock), ``jobs`` (bounded queue, one worker, state on disk),
``errors`` (one JSON error shape), ``app`` / ``search_routes`` / ``job_routes`` (the routes), ``web/`` (the page).
"""
