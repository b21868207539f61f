"""Sends N small Messages requests to a gateway with the official `anthropic` SDK; prints their statuses as JSON.

usage: send_messages.py BASE_URL GATEWAY_KEY N
"""

import json
import sys

import anthropic


def main() -> None:
    base_url, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=30.0)
    statuses = []
    for _ in range(count):
        try:
            client.messages.create(
                model="claude-sonnet-5", max_tokens=32, messages=[{"role": "user", "content": "say hi"}]
            )
            statuses.append(200)
        except anthropic.APIStatusError as e:
            statuses.append(e.status_code)
    print(json.dumps(statuses))


if __name__ == "__main__":
    main()
