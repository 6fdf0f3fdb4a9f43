"""``python -m rsvlm`` is the ``rsvlm`` command."""

from rsvlm.cli.main import main

main()
