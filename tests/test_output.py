"""What the CLI prints: text from feeds and files is shown as it is, never read as markup."""

from tensionwatch.cli import main


def test_explain_free_text_with_markup_brackets_prints_them(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = "Iran [/] strikes Israel [video] after missile attack"
    assert main(["explain", "--text", text]) == 0
    out = capsys.readouterr().out
    # In the snippets around each matched term, as the text was written.
    assert "Iran [/] «strikes» Israel [video]" in out
    assert "iran_israel" in out and "relevant" in out


def test_explain_never_sends_terminal_control_sequences(capsys):
    text = "Iran \x1b]0;owned\x07strikes \x1b[31mIsrael\x1b[0m with missiles"
    assert main(["explain", "--text", text]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "owned" in out  # the text itself is still shown, only the control codes go


def test_a_config_path_with_brackets_is_named_in_the_error(tmp_path, capsys):
    path = tmp_path / "odd [bold]name.yaml"
    path.write_text("feeds: [}", encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "odd [bold]name.yaml" in err and "not valid YAML" in err


def test_a_labelled_set_that_is_not_utf8_is_one_line_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "set.jsonl"
    path.write_bytes(b'{"title": "x", "iran_israel": 1}\n\xff\xfe\x00garbage\n')
    assert main(["eval", "--set", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{path}:2" in err
