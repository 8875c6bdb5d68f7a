"""Planted secrets: the common shapes a report could leak, each with a fresh random value.

``corpus()`` returns (shape, text, secret) triples: ``text`` is how the secret
shows up (an ini line, a JSON document, a URI ...), ``secret`` the part that must
never reach a saved byte or a sent message.
"""

from __future__ import annotations

import base64
import secrets
import string


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def corpus() -> list[tuple[str, str, str]]:
    aws_secret = _rand(40, string.ascii_letters + string.digits + "/+")
    akid = "AKIA" + _rand(16, string.ascii_uppercase + string.digits)
    json_secret = _rand(40, string.ascii_letters + string.digits + "/+")
    basic = base64.b64encode(f"deploy:{_rand(14)}".encode()).decode()
    mongo_pw, pg_pw, amqp_pw = _rand(18), _rand(16), _rand(20)
    slack = f"https://hooks.slack.com/services/T{_rand(8).upper()}/B{_rand(10).upper()}/{_rand(24)}"
    ghp = "ghp_" + _rand(36)
    jwt = "eyJhbGciOiJIUzI1NiJ9." + _rand(24) + "." + _rand(43)
    bearer = _rand(40)
    pem_body = _rand(64, string.ascii_letters + string.digits + "+/")
    mongo_env_pw = _rand(12) + "!#"
    return [
        ("ini aws_secret_access_key", f"[default]\naws_secret_access_key = {aws_secret}\n", aws_secret),
        ("AWS access key id", f"aws_access_key_id={akid}", akid),
        (
            "credentials JSON SecretAccessKey",
            f'{{"Credentials": {{"AccessKeyId": "ASIA{_rand(16, string.ascii_uppercase)}", '
            f'"SecretAccessKey": "{json_secret}", "Expiration": "2026-12-01T00:00:00Z"}}}}',
            json_secret,
        ),
        ("Authorization Basic", f"Authorization: Basic {basic}", basic),
        ("mongodb URI", f"mongodb://app:{mongo_pw}@mongo-0.mongo.db.svc:27017/orders?replicaSet=rs0", mongo_pw),
        ("postgresql URI", f"postgresql://report:{pg_pw}@db.internal:5432/reports", pg_pw),
        ("amqps URI (CloudAMQP)", f"amqps://kxvbqwer:{amqp_pw}@rattlesnake.rmq.cloudamqp.com/kxvbqwer", amqp_pw),
        ("Slack webhook URL", f"SLACK_URL={slack}", slack.rsplit("/", 1)[1]),
        ("GitHub token", f"using {ghp} to clone", ghp),
        ("JWT", f"token from the service account: {jwt}", jwt.split(".", 1)[1]),
        ("bearer token", f"Authorization: Bearer {bearer}", bearer),
        ("PEM private key", f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----", pem_body),
        ("env dump password", f"MONGO_INITDB_ROOT_PASSWORD={mongo_env_pw}", mongo_env_pw),
    ]
