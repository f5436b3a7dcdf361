from __future__ import annotations

import json


def run(args) -> int:
    from bot.settings.rules_file import json_schema
    print(json.dumps(json_schema(), indent=2))
    return 0
