"""Renders or lints the Helm chart with Helm's own Go SDK (PyPI `helm-python-sdk`).

Reads {"chart": DIR, "values": {...}, "release": NAME, "namespace": NS} on stdin and prints
one JSON object: {"manifests": {PATH: TEXT}, "lint": {...}} or {"error": MESSAGE}.
Used by tests/deploy.rs; prints no secrets beyond the placeholder values the test passes.
"""

import json
import sys

import helm_python as helm


def main() -> None:
    request = json.load(sys.stdin)
    chart_dir = request["chart"]
    values = request.get("values") or {}
    try:
        with helm.Chart.load(chart_dir) as chart:
            manifests = chart.render(
                values,
                name=request.get("release", "tessera"),
                namespace=request.get("namespace", "default"),
            )
        report = helm.lint(chart_dir, values)
    except Exception as e:  # the test asserts on the message
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return
    print(json.dumps({"manifests": manifests, "lint": report, "helm": helm.helm_sdk_version()}))


if __name__ == "__main__":
    main()
