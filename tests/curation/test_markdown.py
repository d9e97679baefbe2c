from curation.core.markdown import render_markdown


def test_guidelines_markdown_renders_headings_lists_and_links():
    html = render_markdown("# Voice\n\n- warm\n- **short**\n\n[policy](https://example.com/p)")
    assert "<h1>Voice</h1>" in html and "<li><strong>short</strong></li>" in html
    assert '<a href="https://example.com/p" rel="noopener noreferrer nofollow">policy</a>' in html


def test_hostile_markup_in_guidelines_cannot_run():
    html = render_markdown(
        '<script>alert(1)</script> <img src=x onerror="alert(2)"> [click](javascript:alert(3)) '
        '<a href="javascript:alert(4)">x</a> {{ request.user }}'
    )
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "<img" not in html
    assert "{{ request.user }}" in html  # shown as text, never evaluated as a template
