from __future__ import annotations

import json

from bot.settings.rules_file import json_schema


def run(args) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0
