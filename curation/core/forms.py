def messages_from_post(data) -> list[dict[str, str]]:
    """The turns of a chat editor: parallel ``role`` and ``content`` fields, in order.

    Browsers send textarea line breaks as CRLF; they are stored as LF, so an untouched
    answer compares equal to the original."""
    roles, contents = data.getlist("role"), data.getlist("content")
    return [
        {"role": role, "content": content.replace("\r\n", "\n")} for role, content in zip(roles, contents, strict=False)
    ]


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
