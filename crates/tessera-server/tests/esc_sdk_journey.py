"""The official Python ESC SDK (pulumi-esc-sdk, unmodified) against a running Tessera server.

Run by tests/api/sdk.rs with PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN and TESSERA_ORG set.
Exits non-zero (with the step that failed) if any step does not behave as ESC does.
"""

import os
import sys

import pulumi_esc_sdk as esc
from pulumi_esc_sdk.exceptions import ApiException

org = os.environ["TESSERA_ORG"]
config = esc.Configuration(host=os.environ["PULUMI_BACKEND_URL"],
                           access_token=os.environ["PULUMI_ACCESS_TOKEN"])
client = esc.EscClient(config)
project, name = "sdk-project", "sdk-env"
secret = "sdk-secret-value-42"


def step(text):
    print(f"step: {text}", flush=True)


step("create")
client.create_environment(org, project, name)

step("list")
envs = client.list_environments(org)
assert any(e.project == project and e.name == name for e in envs.environments), envs

step("update with a secret")
body = ("values:\n"
        "  greeting: hello\n"
        "  password:\n"
        f"    fn::secret: {secret}\n"
        "  nested:\n"
        "    list: [1, two, {three: 3}]\n"
        "  environmentVariables:\n"
        "    GREETING: ${greeting}\n")
diags = client.update_environment_yaml(org, project, name, body)
assert not diags.diagnostics, diags

step("get")
definition, raw = client.get_environment(org, project, name)
text = raw.decode()
assert secret not in text, text
assert "ciphertext" in text, text
assert definition.values.environment_variables["GREETING"] == "${greeting}", definition

step("update with what get returned")
client.update_environment(org, project, name, definition)

step("check")
checked = client.check_environment_yaml(org, body)
assert not checked.diagnostics, checked
assert checked.properties["greeting"].value == "hello", checked
bad = client.check_environment_yaml(org, "values:\n  a: ${nope}\n")
assert bad.diagnostics and bad.diagnostics[0].summary, bad
try:
    client.update_environment_yaml(org, project, name, "values:\n  a: ${nope}\n")
    raise AssertionError("an invalid update was accepted")
except ApiException as e:
    assert e.status == 400, e

step("open and read")
env, values, raw = client.open_and_read_environment(org, project, name)
assert values["password"] == secret, values
assert values["greeting"] == "hello", values
assert values["nested"] == {"list": [1, "two", {"three": 3}]}, values
assert values["environmentVariables"] == {"GREETING": "hello"}, values
assert env.properties["password"].secret is True, env.properties["password"]

step("read one property")
opened = client.open_environment(org, project, name)
assert opened.id
prop, value = client.read_open_environment_property(org, project, name, opened.id, "nested.list[2].three")
assert value == 3, (prop, value)

step("list revisions")
revisions = client.list_environment_revisions(org, project, name)
numbers = [r.number for r in revisions]
assert numbers == [3, 2, 1], numbers
assert "latest" in (revisions[0].tags or []), revisions[0]
older = client.list_environment_revisions(org, project, name, before=3, count=1)
assert [r.number for r in older] == [2], older

step("revision tags")
client.create_environment_revision_tag(org, project, name, "stable", 2)
tags = client.list_environment_revision_tags(org, project, name)
assert sorted(t.name for t in tags.tags) == ["latest", "stable"], tags
client.update_environment_revision_tag(org, project, name, "stable", 3)
tag = client.get_environment_revision_tag(org, project, name, "stable")
assert tag.revision == 3, tag
at_tag, _ = client.get_environment_at_version(org, project, name, "stable")
assert at_tag.values.environment_variables["GREETING"] == "${greeting}", at_tag
env2, values2, _ = client.open_and_read_environment_at_version(org, project, name, "2")
assert values2["password"] == secret, values2
client.delete_environment_revision_tag(org, project, name, "stable")

step("environment tags")
created = client.create_environment_tag(org, project, name, "team", "sdk")
assert created.value == "sdk", created
listed = client.list_environment_tags(org, project, name)
assert listed.tags["team"].value == "sdk", listed
updated = client.update_environment_tag(org, project, name, "team", "sdk", "team", "sdk2")
assert updated.value == "sdk2", updated
assert client.get_environment_tag(org, project, name, "team").value == "sdk2"
client.delete_environment_tag(org, project, name, "team")

step("decrypt")
decrypted, raw = client.decrypt_environment(org, project, name)
assert secret in raw, raw

step("clone")
client.clone_environment(org, project, name, project, "sdk-clone")
_, clone_values, _ = client.open_and_read_environment(org, project, "sdk-clone")
assert clone_values["password"] == secret, clone_values

step("delete")
client.delete_environment(org, project, name)
client.delete_environment(org, project, "sdk-clone")
try:
    client.get_environment(org, project, name)
    raise AssertionError("a deleted environment is still there")
except ApiException as e:
    assert e.status == 404, e

print("SDK journey: ok")
sys.exit(0)
