import chatkeep


def test_public_api_is_exactly_what_all_lists():
    public = {name for name in dir(chatkeep) if not name.startswith("_")} - {
        "annotations",
        "backends",
        "blobs",
        "cli",
        "render",
        "shapes",
        "errors",
        "fsutil",
        "ids",
        "limits",
        "location",
        "migrations",
        "model",
        "store",
        "timeutil",
        "validate",
        "vault",
    }
    # Order is kept by ruff (RUF022); here: no duplicates, and nothing public unlisted.
    assert len(set(chatkeep.__all__)) == len(chatkeep.__all__)
    assert public <= set(chatkeep.__all__)
