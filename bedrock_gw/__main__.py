"""``python -m bedrock_gw`` is ``bedrock-gw``."""

from __future__ import annotations

import sys

from bedrock_gw.cli import main

sys.exit(main())
