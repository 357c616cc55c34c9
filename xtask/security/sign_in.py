"""Signs in to a running Tessera as the demo Owner and makes an API key of the demo
organization for the scans. Prints the key, the session's Cookie header value, and the id of
one of the organization's projects, a line each.

Standard library only: it runs before anything is installed into the scanners' venv.
"""

import http.cookiejar
import json
import sys
import urllib.parse
import urllib.request

base = sys.argv[1]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def call(function, form):
    request = urllib.request.Request(
        f"{base}/api/{function}",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Accept": "application/json"},
    )
    with opener.open(request) as response:
        return response.read()


call("log_in", {"email": "owner@acme.test", "password": "tessera-demo"})
made = json.loads(
    call(
        "create_api_key",
        [
            ("slug", "acme"),
            ("name", "Security scan"),
            # Every scope a key can have, as the form's checkboxes send them.
            ("scopes[]", "projects:read"),
            ("scopes[]", "projects:write"),
            ("scopes[]", "documents:read"),
            ("scopes[]", "documents:write"),
            ("scopes[]", "members:read"),
            ("expires_in_days", "1"),
        ],
    )
)
cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
listing = urllib.request.Request(f"{base}/api/v1/orgs/acme/projects", headers={"Authorization": f"Bearer {made['key']}"})
with urllib.request.urlopen(listing) as response:
    projects = json.loads(response.read())
print(made["key"])
print(cookie)
print(projects[0]["id"])
