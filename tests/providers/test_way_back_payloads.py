"""What the e-mail and SMS adapters add for the way back: Postmark puts marketing mail on
the broadcast stream with its List-Unsubscribe pair in ``Headers``; Twilio asks for status
reports at ``<public_url>/hooks/<name>`` when the config has a server."""

from __future__ import annotations

from urllib.parse import parse_qs

from httpsink import Answer

HEADERS = {
    "List-Unsubscribe": "<https://regard.example.com/u/d_1.sig>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}
OK = {"MessageID": "m-1", "ErrorCode": 0, "Message": "OK"}


def test_postmark_streams_by_purpose_and_sends_the_headers(sink, make_provider, deliver, record):
    postmark = make_provider(
        f'type = "postmark"\nserver_token = "POSTMARK_API_TEST"\nbase_url = "{sink.url}"\n'
        'broadcast_stream = "news"\n'
    )
    sink.script(Answer(200, OK), Answer(200, OK))
    deliver(postmark, record("email", headers=HEADERS))
    marketing = sink.last.json()
    assert marketing["MessageStream"] == "news"
    assert marketing["Headers"] == [
        {"Name": "List-Unsubscribe", "Value": "<https://regard.example.com/u/d_1.sig>"},
        {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
    ]
    deliver(postmark, record("email", headers={}))
    service = sink.last.json()
    assert service["MessageStream"] == "outbound" and "Headers" not in service


def test_twilio_asks_for_status_callbacks_only_with_a_server(
    workspace, sink, make_provider, deliver, record
):
    table = (
        'type = "twilio"\naccount_sid = "AC0123"\nauth_token = "tok-123456"\n'
        f'from = "+15005550006"\nbase_url = "{sink.url}"\n'
    )
    created = Answer(201, {"sid": "SM1", "status": "queued"})
    sink.script(created, created)
    deliver(make_provider(table, name="tw"), record("sms"))
    assert "StatusCallback" not in parse_qs(sink.last.body.decode())
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace(
            "[providers.tw]",
            '[server]\npublic_url = "https://regard.example.com"\n\n[providers.tw]',
        ),
        encoding="utf-8",
    )
    from regard.providers import build_provider
    from regard.workspace import load_config

    deliver(build_provider("tw", load_config(workspace.config)), record("sms"))
    form = parse_qs(sink.last.body.decode())
    assert form["StatusCallback"] == ["https://regard.example.com/hooks/tw"]
